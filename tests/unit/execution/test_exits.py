"""Exit decisions: recorded once per order id, placed once, refused ones flag the position."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from libs.contracts.commands import PlaceExitOrder
from libs.contracts.errors import NotFound, ValidationFailed
from libs.contracts.execution import (
    OrderAction,
    OrderLeg,
    OrderPurpose,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.positions import AttentionReason, ExitOrderPlaced, PositionNeedsAttention
from libs.contracts.strategy import SpreadKind
from services.execution.core import InvalidOrder
from services.execution.exits import exit_spec, exit_underlying, refused_exit_attention
from tests.unit.execution.builders import LONG_PUT, SHORT_PUT, D
from tests.unit.execution.fakes import ACCOUNT, Execution, others

CLOSE = (
    OrderLeg(symbol=SHORT_PUT, action=OrderAction.BUY_TO_CLOSE, quantity=1),
    OrderLeg(symbol=LONG_PUT, action=OrderAction.SELL_TO_CLOSE, quantity=1),
)


def _decided(limit: str = "-1.00", **changes: Any) -> ExitOrderPlaced:
    fields: dict[str, Any] = {
        "position_id": uuid4(),
        "spread_kind": SpreadKind.PUT_SPREAD_1,
        "order_id": uuid4(),
        "purpose": OrderPurpose.STOP_LOSS,
        "legs": CLOSE,
        "limit_price": D(limit),
        "reason": "closing cost >= 2 x entry credit",
        **changes,
    }
    return ExitOrderPlaced(**others(), **fields)


def _command(decided: ExitOrderPlaced, account: str = ACCOUNT) -> PlaceExitOrder:
    return PlaceExitOrder(
        account_id=account,
        requested_by=None,
        position_id=decided.position_id,
        spread_kind=decided.spread_kind,
        order_id=decided.order_id,
        purpose=decided.purpose,
        legs=decided.legs,
        limit_price=decided.limit_price,
        reason=decided.reason,
    )


def test_an_exit_without_a_known_position_takes_its_legs_root() -> None:
    assert exit_underlying(None, CLOSE) == "QQQ"


def test_an_exit_is_a_gtc_debit_rounded_up_to_the_tick() -> None:
    spec = exit_spec(_decided("-1.005"), "QQQ")
    assert spec.limit_price == D("-1.01")
    assert spec.time_in_force is TimeInForce.GTC
    assert spec.purpose is OrderPurpose.STOP_LOSS
    with pytest.raises(InvalidOrder):
        exit_spec(_decided("1.00"), "QQQ")  # a credit never closes a credit spread


def test_a_refused_exit_flags_its_position_as_app_managed() -> None:
    decided = _decided()
    env = others()
    flag = refused_exit_attention(decided, "QQQ", "bad price", env)
    assert flag.position_id == decided.position_id
    assert flag.reason is AttentionReason.ORDER_FAILED
    assert flag.app_managed
    assert flag.message == "the STOP_LOSS exit could not be placed: bad price"


async def test_an_exit_delivered_twice_is_recorded_and_sent_once() -> None:
    execution = Execution()
    decided = _decided()
    execution.given(decided)
    await execution.exits.on_decided(decided)
    await execution.exits.on_decided(decided)
    await execution.settle()
    (submitted,) = execution.of(OrderSubmitted)
    assert submitted.order_id == decided.order_id
    assert submitted.causation_id == decided.event_id
    assert len(execution.broker.placed) == 1
    assert ACCOUNT in execution.feeds  # the account is followed once it has an order


async def test_an_exit_that_is_no_limit_order_flags_the_position_instead() -> None:
    execution = Execution()
    decided = _decided("1.00")
    execution.given(decided)
    await execution.exits.on_decided(decided)
    await execution.settle()
    assert execution.of(OrderSubmitted) == []
    (flag,) = execution.of(PositionNeedsAttention)
    assert flag.order_id == decided.order_id
    assert execution.broker.placed == []


async def test_a_command_decides_once_and_refuses_another_accounts_order() -> None:
    execution = Execution()
    decided = _decided()
    command = _command(decided)
    first = await execution.exits.decide(command)
    again = await execution.exits.decide(command)
    assert again == first
    assert execution.of(ExitOrderPlaced) == [first]
    with pytest.raises(NotFound):
        await execution.exits.decide(_command(decided, account="5WT00002"))


async def test_a_command_for_no_valid_exit_is_refused_and_records_nothing() -> None:
    execution = Execution()
    with pytest.raises(ValidationFailed):
        await execution.exits.decide(_command(_decided("1.00")))
    assert execution.published == []
