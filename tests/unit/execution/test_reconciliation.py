"""Reconciliation: what the broker holds is recorded, unanswered orders resolved, gaps filled."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from libs.contracts.errors import BrokerUnavailable
from libs.contracts.execution import (
    OrderAccepted,
    OrderAction,
    OrderCancelled,
    OrderFilled,
    OrderLeg,
    OrderPurpose,
    OrderStatus,
    OrderSubmitted,
)
from libs.contracts.partitions import partition_of
from libs.contracts.positions import ExitOrderPlaced, PositionOpened
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import TradingResumed, TradingSuspended
from services.execution.core import opening_order
from services.execution.projection import OrderRecord
from services.execution.reconciliation import accounts_in, taken_over
from services.execution.state import ExecutionState
from tests.unit.execution import builders
from tests.unit.execution.builders import LONG_PUT, SHORT_PUT, D
from tests.unit.execution.fakes import ACCOUNT, Execution, others

PARTITION = partition_of(ACCOUNT)


def _recorded(execution: Execution) -> OrderRecord:
    """An opening an earlier process recorded, then died before the broker answered."""
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    execution.given(OrderSubmitted(**others(), **spec.submitted_fields()))
    record = execution.state.order(spec.order_id)
    assert record is not None
    return record


def test_a_taken_over_partition_reconciles_its_accounts_with_open_orders() -> None:
    other = next(f"5WT{n:05d}" for n in range(2, 999) if partition_of(f"5WT{n:05d}") != PARTITION)
    assert accounts_in([ACCOUNT, other], PARTITION) == {ACCOUNT}
    state = ExecutionState()
    assert taken_over(state, PARTITION) == set()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    state.apply(OrderSubmitted(**others(), **spec.submitted_fields()))
    assert taken_over(state, PARTITION) == {ACCOUNT}
    assert taken_over(state, partition_of(other)) == set()


async def test_an_order_the_broker_holds_is_recorded_not_sent_again() -> None:
    execution = Execution()
    record = _recorded(execution)
    execution.broker.add(record.request(), OrderStatus.FILLED)
    execution.reconciler.take_over(PARTITION)
    await execution.reconciler.reconcile()
    await execution.settle()
    assert [
        r.client_tag for r in execution.broker.placed if r.client_tag == record.client_tag
    ] == []
    assert len(execution.of(OrderAccepted, order_id=record.order_id)) == 1
    assert len(execution.of(OrderFilled, order_id=record.order_id)) == 1
    assert len(execution.of(PositionOpened)) == 1
    assert ACCOUNT in execution.feeds


async def test_an_unanswered_order_unknown_to_the_broker_is_sent_once() -> None:
    execution = Execution()
    record = _recorded(execution)
    await execution.reconciler.reconcile()
    await execution.reconciler.reconcile()
    await execution.settle()
    assert [r.client_tag for r in execution.broker.placed] == [record.client_tag]
    assert execution.of(OrderAccepted, order_id=record.order_id)


async def test_an_account_of_another_replica_is_left_alone() -> None:
    execution = Execution(owned=set())
    _recorded(execution)
    execution.reconciler.take_over(PARTITION)
    await execution.reconciler.reconcile()
    await execution.settle()
    assert execution.published == []
    assert execution.broker.placed == []


async def test_a_reconnected_stream_has_its_account_reconciled_fully() -> None:
    execution = Execution()
    reserved = await execution.reserve()
    await execution.settle()
    (accepted,) = execution.of(OrderAccepted)
    execution.broker.set(accepted.broker_order_id, status=OrderStatus.CANCELLED)
    await execution.reconciler.reconcile()  # nothing told: the working order stays
    assert execution.of(OrderCancelled) == []
    execution.feeds.reconnected = [reserved.account_id]
    await execution.reconciler.reconcile()
    (cancelled,) = execution.of(OrderCancelled)
    assert cancelled.causation_id == accepted.event_id


async def test_the_poll_of_a_suspended_account_resumes_trading_once_the_broker_answers() -> None:
    execution = Execution()
    _recorded(execution)
    execution.reconciler.take_over(PARTITION)
    execution.broker.failures = [BrokerUnavailable("gone")]
    await execution.reconciler.reconcile()
    assert len(execution.of(TradingSuspended)) == 1
    await execution.settle()
    await execution.reconciler.reconcile()
    await execution.settle()
    assert len(execution.of(TradingResumed)) == 1
    assert len(execution.of(TradingSuspended)) == 1


async def test_an_exit_decided_but_never_recorded_is_placed() -> None:
    execution = Execution()
    _recorded(execution)  # the account has orders: its gaps are looked for
    decided = ExitOrderPlaced(
        **others(),
        position_id=uuid4(),
        spread_kind=SpreadKind.PUT_SPREAD_1,
        order_id=uuid4(),
        purpose=OrderPurpose.STOP_LOSS,
        legs=(
            OrderLeg(symbol=SHORT_PUT, action=OrderAction.BUY_TO_CLOSE, quantity=1),
            OrderLeg(symbol=LONG_PUT, action=OrderAction.SELL_TO_CLOSE, quantity=1),
        ),
        limit_price=D("-1.00"),
        reason="why now",
    )
    execution.given(decided)
    await execution.reconciler.reconcile()
    await execution.settle()
    (submitted,) = execution.of(OrderSubmitted)
    assert submitted.order_id == decided.order_id
    assert submitted.causation_id == decided.event_id
    assert execution.of(OrderAccepted, order_id=decided.order_id)


async def test_taking_a_partition_over_wakes_the_poll_at_once() -> None:
    execution = Execution()
    await execution.reserve()
    await execution.settle()
    (accepted,) = execution.of(OrderAccepted)
    execution.broker.set(accepted.broker_order_id, status=OrderStatus.CANCELLED)
    loop = asyncio.create_task(execution.reconciler.run())
    try:
        await asyncio.sleep(0.05)  # the first poll: nothing due, nothing learnt
        assert execution.of(OrderCancelled) == []
        execution.reconciler.take_over(PARTITION)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if execution.of(OrderCancelled):
                break
        assert len(execution.of(OrderCancelled)) == 1  # long before the next poll (60 s)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
