"""Cancels: asked of the broker, then recorded as the broker reports the order."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from libs.contracts.commands import CancelOrder
from libs.contracts.errors import BrokerUnavailable, ErrorKind, InvalidState
from libs.contracts.execution import (
    CancelReason,
    OrderAccepted,
    OrderAction,
    OrderCancelled,
    OrderFilled,
    OrderLeg,
    OrderPurpose,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
)
from libs.contracts.positions import ExitOrderPlaced
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import TradingSuspended
from services.execution.cancels import SUPERSEDE_REASON, supersede_reason
from services.execution.exits import exit_spec
from tests.unit.execution.builders import LONG_PUT, SHORT_PUT, D
from tests.unit.execution.fakes import ACCOUNT, Execution, others

CLOSE = (
    OrderLeg(symbol=SHORT_PUT, action=OrderAction.BUY_TO_CLOSE, quantity=1),
    OrderLeg(symbol=LONG_PUT, action=OrderAction.SELL_TO_CLOSE, quantity=1),
)
POSITION = uuid4()


def _exit(purpose: OrderPurpose, **changes: Any) -> ExitOrderPlaced:
    return ExitOrderPlaced(
        **others(),
        position_id=POSITION,
        spread_kind=SpreadKind.PUT_SPREAD_1,
        order_id=uuid4(),
        purpose=purpose,
        legs=CLOSE,
        limit_price=D("-1.00"),
        reason="why now",
        **changes,
    )


async def _working_target(execution: Execution) -> ExitOrderPlaced:
    target = _exit(OrderPurpose.PROFIT_TARGET)
    execution.given(target)
    await execution.exits.on_decided(target)
    await execution.settle()
    assert execution.of(OrderAccepted, order_id=target.order_id)
    return target


def test_a_superseded_exit_is_cancelled_for_the_reason_of_the_new_one() -> None:
    assert supersede_reason(OrderPurpose.STOP_LOSS) is CancelReason.STOP_LOSS
    assert supersede_reason(OrderPurpose.TIME_EXIT) is CancelReason.TIME_EXIT
    assert supersede_reason(OrderPurpose.MANUAL_EXIT) is CancelReason.MANUAL_EXIT
    assert supersede_reason(OrderPurpose.PROFIT_TARGET) is CancelReason.SYSTEM
    assert supersede_reason(OrderPurpose.OPEN) is CancelReason.SYSTEM
    assert OrderPurpose.OPEN not in SUPERSEDE_REASON


async def test_a_cancel_records_the_reason_asked_once_the_broker_reports_it() -> None:
    execution = Execution()
    target = await _working_target(execution)
    record = execution.state.order(target.order_id)
    assert record is not None
    await execution.canceller.cancel_at_broker(ACCOUNT, record, CancelReason.USER_REQUESTED)
    (cancelled,) = execution.of(OrderCancelled)
    assert cancelled.reason is CancelReason.USER_REQUESTED


async def test_a_cancel_the_broker_refuses_records_what_the_order_became() -> None:
    execution = Execution()
    target = await _working_target(execution)
    record = execution.state.order(target.order_id)
    assert record is not None
    assert record.broker_order_id is not None
    filled = execution.broker.add(record.request(), OrderStatus.FILLED)
    execution.broker.set(record.broker_order_id, status=OrderStatus.FILLED, fills=filled.fills)
    await execution.canceller.cancel_at_broker(ACCOUNT, record, CancelReason.USER_REQUESTED)
    assert execution.of(OrderFilled, order_id=target.order_id)
    assert execution.of(OrderCancelled) == []


async def test_an_order_the_broker_never_acknowledged_cannot_be_cancelled() -> None:
    execution = Execution()
    target = _exit(OrderPurpose.PROFIT_TARGET)
    execution.given(target)
    execution.given(
        OrderSubmitted(
            **others(cause=target.causation()), **exit_spec(target, "QQQ").submitted_fields()
        )
    )
    record = execution.state.order(target.order_id)
    assert record is not None
    with pytest.raises(InvalidState):
        await execution.canceller.cancel_at_broker(ACCOUNT, record, CancelReason.SYSTEM)
    assert execution.broker.cancels == []


async def test_a_stop_loss_cancels_the_target_it_supersedes_before_it_is_sent() -> None:
    execution = Execution()
    target = await _working_target(execution)
    stop = _exit(OrderPurpose.STOP_LOSS, replaces_order_id=target.order_id)
    execution.given(stop)
    await execution.exits.on_decided(stop)
    await execution.settle()
    (cancelled,) = execution.of(OrderCancelled, order_id=target.order_id)
    assert cancelled.reason is CancelReason.STOP_LOSS
    assert execution.of(OrderAccepted, order_id=stop.order_id)
    assert len(execution.broker.placed) == 2


async def test_a_stop_loss_whose_target_filled_first_is_not_sent() -> None:
    execution = Execution()
    target = await _working_target(execution)
    record = execution.state.order(target.order_id)
    assert record is not None
    assert record.broker_order_id is not None
    filled = execution.broker.add(record.request(), OrderStatus.FILLED)
    execution.broker.set(record.broker_order_id, status=OrderStatus.FILLED, fills=filled.fills)
    stop = _exit(OrderPurpose.STOP_LOSS, replaces_order_id=target.order_id)
    execution.given(stop)
    await execution.exits.on_decided(stop)
    await execution.settle()
    (rejected,) = execution.of(OrderRejected, order_id=stop.order_id)
    assert rejected.kind is ErrorKind.INVALID_STATE
    assert "filled first" in rejected.reason
    assert len(execution.broker.placed) == 1


async def test_a_cancel_command_while_the_broker_is_away_suspends_trading() -> None:
    execution = Execution()
    target = await _working_target(execution)

    async def away(account_number: str, broker_order_id: str) -> None:
        raise BrokerUnavailable("gone")

    execution.broker.cancel_order = away  # type: ignore[method-assign]
    command = CancelOrder(account_id=ACCOUNT, requested_by=None, order_id=target.order_id)
    with pytest.raises(BrokerUnavailable):
        await execution.commands.cancel_order(command)
    assert len(execution.of(TradingSuspended)) == 1
