"""Execution's commands against the state and a broker in memory."""

from __future__ import annotations

from uuid import uuid4

import pytest

from libs.contracts.commands import (
    CancelOrder,
    GetOrder,
    GetOrders,
    PlaceExitOrder,
    ReplaceOrderPrice,
)
from libs.contracts.errors import InvalidState, NotFound
from libs.contracts.execution import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderPurpose,
    OrderReplaced,
    OrderStatus,
    OrderSubmitted,
)
from libs.contracts.positions import ExitOrderPlaced, PositionOpened
from libs.domain.orders import opening_order_id
from tests.unit.execution.builders import D
from tests.unit.execution.fakes import ACCOUNT, Execution

BASE = {"account_id": ACCOUNT, "requested_by": None}


async def _with_targets() -> tuple[Execution, list[ExitOrderPlaced]]:
    execution = Execution()
    execution.broker.fill_openings = True
    await execution.reserve()
    await execution.settle()
    return execution, execution.of(ExitOrderPlaced)


def test_every_verb_has_its_handler() -> None:
    handlers = Execution().commands.handlers()
    assert set(handlers) == {
        GetOrder.VERB,
        GetOrders.VERB,
        CancelOrder.VERB,
        PlaceExitOrder.VERB,
        ReplaceOrderPrice.VERB,
    }


async def test_orders_are_answered_from_the_state() -> None:
    execution, targets = await _with_targets()
    listed = await execution.commands.get_orders(GetOrders(**BASE))
    assert {o.order_id for o in listed.orders} == {t.order_id for t in targets}
    every = await execution.commands.get_orders(GetOrders(**BASE, open_only=False))
    assert len(every.orders) == 4
    (opened,) = execution.of(PositionOpened)
    opening = next(o for o in every.orders if o.purpose is OrderPurpose.OPEN)
    reply = await execution.commands.get_order(GetOrder(**BASE, order_id=opening.order_id))
    assert reply.order.position_id == opened.position_id
    with pytest.raises(NotFound):
        await execution.commands.get_order(GetOrder(**BASE, order_id=uuid4()))


async def test_a_cancel_answers_with_the_order_as_the_broker_reports_it() -> None:
    execution, targets = await _with_targets()
    reply = await execution.commands.cancel_order(CancelOrder(**BASE, order_id=targets[0].order_id))
    assert reply.order.status is OrderStatus.CANCELLED
    (cancelled,) = execution.of(OrderCancelled)
    assert cancelled.reason is CancelReason.USER_REQUESTED
    with pytest.raises(InvalidState):
        await execution.commands.cancel_order(CancelOrder(**BASE, order_id=targets[0].order_id))


async def test_a_repricing_is_recorded_and_sent_once_per_replacement_id() -> None:
    execution, targets = await _with_targets()
    target = targets[0]
    command = ReplaceOrderPrice(
        **BASE,
        order_id=target.order_id,
        replacement_order_id=uuid4(),
        limit_price=target.limit_price - D("0.05"),
    )
    first = await execution.commands.replace_order_price(command)
    assert first.order.status is OrderStatus.SUBMITTED
    await execution.settle()
    again = await execution.commands.replace_order_price(command)
    await execution.settle()
    assert again.order.order_id == command.replacement_order_id
    assert again.order.status is OrderStatus.WORKING
    (submitted,) = execution.of(OrderSubmitted, order_id=command.replacement_order_id)
    assert submitted.replaces_order_id == target.order_id
    (replaced,) = execution.of(OrderReplaced, order_id=target.order_id)
    assert replaced.replacement_order_id == command.replacement_order_id
    assert execution.of(OrderAccepted, order_id=command.replacement_order_id)


async def test_the_monitors_exit_is_decided_placed_and_answered() -> None:
    execution, targets = await _with_targets()
    target = targets[0]
    (opened,) = execution.of(PositionOpened)
    command = PlaceExitOrder(
        **BASE,
        position_id=opened.position_id,
        spread_kind=target.spread_kind,
        order_id=uuid4(),
        purpose=OrderPurpose.STOP_LOSS,
        legs=target.legs,
        limit_price=D("-9.995"),
        replaces_order_id=target.order_id,
        reason="closing cost >= 2 x entry credit",
    )
    reply = await execution.commands.place_exit_order(command)
    assert reply.order.order_id == command.order_id
    assert reply.order.limit_price == D("-10.00")
    await execution.commands.place_exit_order(command)
    await execution.settle()
    assert len(execution.of(ExitOrderPlaced, order_id=command.order_id)) == 1
    assert len(execution.of(OrderSubmitted, order_id=command.order_id)) == 1
    (cancelled,) = execution.of(OrderCancelled, order_id=target.order_id)
    assert cancelled.reason is CancelReason.STOP_LOSS


async def test_a_repricing_of_an_unknown_order_or_of_an_opening_is_refused() -> None:
    execution = Execution()
    reserved = await execution.reserve()
    await execution.settle()
    opening = opening_order_id(reserved.reservation_id)
    with pytest.raises(NotFound):
        await execution.commands.replace_order_price(
            ReplaceOrderPrice(
                **BASE, order_id=uuid4(), replacement_order_id=uuid4(), limit_price=D("-1")
            )
        )
    with pytest.raises(InvalidState, match="only closing orders"):
        await execution.commands.replace_order_price(
            ReplaceOrderPrice(
                **BASE, order_id=opening, replacement_order_id=uuid4(), limit_price=D("-1")
            )
        )
