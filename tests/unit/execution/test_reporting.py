"""Broker reports into events: each fact its event, once; failed exits flag the position."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import pytest

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderSubmitted,
)
from libs.contracts.positions import AttentionReason
from libs.contracts.strategy import SpreadKind
from libs.domain.orders import opening_order_id
from services.execution.core import (
    Accepted,
    Cancelled,
    Expired,
    Fact,
    Fills,
    Rejected,
    Replaced,
    opening_order,
)
from services.execution.projection import OrderRecord
from services.execution.reporting import FACT_EVENTS, fact_event, failed_exit_attention
from services.execution.state import ExecutionState
from tests.unit.execution import builders
from tests.unit.execution.builders import AT, D, trident_fills
from tests.unit.execution.fakes import ACCOUNT, Execution, others

REPLACEMENT = uuid4()


class Context:
    """A cancel asked for STOP_LOSS; ``replacement`` replaces every order."""

    def __init__(self, replacement: UUID | None) -> None:
        self.replacement = replacement

    def cancel_reason(self, order_id: UUID) -> CancelReason:
        return CancelReason.STOP_LOSS

    def replacement_of(self, account: str, order_id: UUID) -> UUID | None:
        return self.replacement


def _record() -> OrderRecord:
    state = ExecutionState()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    state.apply(OrderSubmitted(**others(), **spec.submitted_fields()))
    record = state.order(spec.order_id)
    assert record is not None
    return record


def _env() -> dict[str, Any]:
    return {
        "occurred_at": AT,
        "producer": "execution",
        "account_id": ACCOUNT,
        "correlation_id": new_event_id(),
    }


@pytest.mark.parametrize(
    ("fact", "kind"),
    [
        (Accepted("7"), OrderAccepted),
        (Fills("7", trident_fills()[:1], complete=False), OrderPartiallyFilled),
        (Fills("7", trident_fills(), complete=True), OrderFilled),
        (Rejected("7", "no"), OrderRejected),
        (Cancelled("7", "gone"), OrderCancelled),
        (Expired("7"), OrderExpired),
        (Replaced("7", "8"), OrderReplaced),
    ],
)
def test_each_fact_becomes_its_event(fact: Fact, kind: type[Any]) -> None:
    record = _record()
    event = fact_event(fact, _env(), record, Context(REPLACEMENT))
    assert type(event) is kind
    assert getattr(event, "order_id") == record.order_id  # noqa: B009
    assert getattr(event, "broker_order_id") == "7"  # noqa: B009


def test_every_fact_class_has_an_event() -> None:
    assert set(FACT_EVENTS) == {Accepted, Fills, Rejected, Cancelled, Expired, Replaced}


def test_a_cancel_carries_the_reason_asked_and_a_rejection_the_brokers() -> None:
    record = _record()
    cancelled = fact_event(Cancelled("7", "gone"), _env(), record, Context(None))
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason is CancelReason.STOP_LOSS
    assert cancelled.message == "gone"
    rejected = fact_event(Rejected("7", "exchange closed"), _env(), record, Context(None))
    assert isinstance(rejected, OrderRejected)
    assert rejected.kind is ErrorKind.ORDER_REJECTED
    assert rejected.reason == "exchange closed"


def test_a_replacement_outside_senex_ends_the_order_cancelled_by_the_broker() -> None:
    record = _record()
    ours = fact_event(Replaced("7", "8"), _env(), record, Context(REPLACEMENT))
    assert isinstance(ours, OrderReplaced)
    assert ours.replacement_order_id == REPLACEMENT
    outside = fact_event(Replaced("7", "8"), _env(), record, Context(None))
    assert isinstance(outside, OrderCancelled)
    assert outside.reason is CancelReason.BROKER
    assert outside.message == "replaced at the broker outside Senex by order 8"


def test_only_a_failed_exit_of_a_position_flags_it() -> None:
    opening = _record()
    assert failed_exit_attention(opening, "no", _env()) is None
    position = uuid4()
    exit_record = replace(
        opening,
        purpose=OrderPurpose.STOP_LOSS,
        position_id=position,
        spread_kind=SpreadKind.CALL_SPREAD,
    )
    flag = failed_exit_attention(exit_record, "exchange closed", _env())
    assert flag is not None
    assert flag.position_id == position
    assert flag.reason is AttentionReason.ORDER_FAILED
    assert flag.app_managed
    assert flag.message == "the STOP_LOSS order for CALL_SPREAD failed: exchange closed"
    assert failed_exit_attention(replace(exit_record, position_id=None), "x", _env()) is None


async def test_the_same_report_twice_publishes_once_and_chains_each_event() -> None:
    execution = Execution()
    reserved = await execution.reserve()
    order_id = opening_order_id(reserved.reservation_id)
    await execution.settle()
    (accepted,) = execution.of(OrderAccepted, order_id=order_id)
    report = execution.broker.set(
        accepted.broker_order_id, status=OrderStatus.CANCELLED, broker_status="Cancelled"
    )
    await execution.reports.report(ACCOUNT, order_id, report)
    await execution.reports.report(ACCOUNT, order_id, report)
    await execution.reports.on_notification(ACCOUNT, report)
    (cancelled,) = execution.of(OrderCancelled, order_id=order_id)
    assert cancelled.reason is CancelReason.BROKER
    assert cancelled.causation_id == accepted.event_id
    orders = execution.service_metrics.registry.get_sample_value(
        "senex_orders_total", {"service": "execution", "status": "CANCELLED"}
    )
    assert orders == 1


async def test_a_notification_about_an_order_not_ours_is_passed_over() -> None:
    execution = Execution()
    await execution.reserve()
    await execution.settle()
    before = len(execution.published)
    (order,) = execution.broker.orders.values()
    await execution.reports.on_notification(ACCOUNT, order.model_copy(update={"client_tag": None}))
    foreign = order.model_copy(update={"client_tag": "sx-unknown", "status": OrderStatus.FILLED})
    await execution.reports.on_notification(ACCOUNT, foreign)
    assert len(execution.published) == before


async def test_failing_an_order_twice_records_one_rejection() -> None:
    execution = Execution()
    execution.clock.set(AT.replace(hour=22))  # recorded, refused at once
    reserved = await execution.reserve()
    order_id = opening_order_id(reserved.reservation_id)
    await execution.reports.fail(ACCOUNT, order_id, ErrorKind.INTERNAL_ERROR, "again")
    (rejected,) = execution.of(OrderRejected)
    assert rejected.kind is ErrorKind.MARKET_CLOSED
