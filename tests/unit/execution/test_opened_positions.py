"""A filled opening opens its position and places its profit targets; a partial flags it."""

from __future__ import annotations

from uuid import uuid4

from libs.contracts.execution import (
    OrderAccepted,
    OrderAction,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderStatus,
    OrderSubmitted,
)
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    PositionAttentionCleared,
    PositionNeedsAttention,
    PositionOpened,
)
from libs.domain.orders import opening_order_id
from services.execution.core import opening_order, position_id_for
from services.execution.positions import held_legs, partial_fill_message, plan_of
from services.execution.projection import OrderRecord
from services.execution.state import ExecutionState
from tests.unit.execution import builders
from tests.unit.execution.builders import LONG_PUT, SHORT_PUT, D, fill
from tests.unit.execution.fakes import ACCOUNT, Execution, others


def _partly_filled() -> OrderRecord:
    state = ExecutionState()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    submitted = OrderSubmitted(**others(), **spec.submitted_fields())
    state.apply(submitted)
    state.apply(
        OrderPartiallyFilled(
            **others(cause=submitted.causation()),
            order_id=spec.order_id,
            broker_order_id="7",
            legs=(
                fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, 1, "2.10", "f1"),
                fill(LONG_PUT, OrderAction.BUY_TO_OPEN, 1, "1.05", "f2"),
            ),
        )
    )
    record = state.order(spec.order_id)
    assert record is not None
    return record


def test_a_partial_fill_holds_the_filled_legs_signed() -> None:
    record = _partly_filled()
    held = {leg.symbol: leg.quantity for leg in held_legs(record)}
    assert held == {SHORT_PUT: -1, LONG_PUT: 1}
    message = partial_fill_message(record)
    assert f"1/2 {SHORT_PUT}" in message
    assert f"1/2 {LONG_PUT}" in message
    assert "not app managed" in message


async def test_a_full_fill_opens_the_position_then_places_three_profit_targets() -> None:
    execution = Execution()
    execution.broker.fill = True
    reserved = await execution.reserve()
    await execution.settle()
    order_id = opening_order_id(reserved.reservation_id)
    (filled,) = execution.of(OrderFilled, order_id=order_id)
    (opened,) = execution.of(PositionOpened)
    assert opened.position_id == position_id_for(order_id)
    assert opened.causation_id == filled.event_id
    assert opened.total_entry_credit == D("2.90")  # 2 x (2.10 - 1.05) + (1.60 - 0.80)
    targets = execution.of(ExitOrderPlaced)
    assert len(targets) == 3
    assert all(t.causation_id == opened.event_id for t in targets)
    assert {t.purpose for t in targets} == {OrderPurpose.PROFIT_TARGET}
    for target in targets:
        (submitted,) = execution.of(OrderSubmitted, order_id=target.order_id)
        assert submitted.causation_id == target.event_id
    assert len(execution.broker.placed) == 4
    assert plan_of(opened).total_entry_credit == opened.total_entry_credit


async def test_finding_the_fill_again_adds_nothing() -> None:
    execution = Execution()
    execution.broker.fill = True
    reserved = await execution.reserve()
    await execution.settle()
    count = len(execution.published)
    record = execution.state.order(opening_order_id(reserved.reservation_id))
    assert record is not None
    async with execution.locks.report(record.order_id):
        await execution.positions.ensure_position(ACCOUNT, record)
    await execution.settle()
    assert len(execution.published) == count


async def test_a_partial_fill_flags_once_and_a_full_fill_clears_the_flag() -> None:
    execution = Execution()
    reserved = await execution.reserve()
    await execution.settle()
    order_id = opening_order_id(reserved.reservation_id)
    (accepted,) = execution.of(OrderAccepted, order_id=order_id)
    full = execution.broker.orders[accepted.broker_order_id]
    record = execution.state.order(order_id)
    assert record is not None
    filled = execution.broker.add(record.request(), OrderStatus.FILLED)
    partial = full.model_copy(
        update={"status": OrderStatus.PARTIALLY_FILLED, "fills": filled.fills[:2]}
    )
    await execution.reports.report(ACCOUNT, order_id, partial)
    await execution.reports.report(ACCOUNT, order_id, partial.model_copy(update={"fills": ()}))
    (flag,) = execution.of(PositionNeedsAttention)
    assert flag.reason is AttentionReason.PARTIAL_FILL
    assert not flag.app_managed
    assert execution.of(PositionOpened) == []
    done = full.model_copy(update={"status": OrderStatus.FILLED, "fills": filled.fills})
    await execution.reports.report(ACCOUNT, order_id, done)
    (cleared,) = execution.of(PositionAttentionCleared)
    assert cleared.position_id == flag.position_id


async def test_fills_that_make_no_trident_flag_a_broker_mismatch_once() -> None:
    execution = Execution()
    reserved = await execution.reserve()
    await execution.settle()
    order_id = opening_order_id(reserved.reservation_id)
    (accepted,) = execution.of(OrderAccepted, order_id=order_id)
    report = execution.broker.set(
        accepted.broker_order_id,
        status=OrderStatus.FILLED,
        fills=(fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, 2, "2.10", "odd"),),
    )
    await execution.reports.report(ACCOUNT, order_id, report)
    await execution.reports.report(ACCOUNT, order_id, report)  # a poll finds it again
    (flag,) = execution.of(PositionNeedsAttention)
    assert flag.reason is AttentionReason.BROKER_MISMATCH
    assert execution.of(PositionOpened) == []
