"""The opening order of a reservation: recorded once, sent in market hours only."""

from __future__ import annotations

from datetime import timedelta

from libs.contracts.errors import ErrorKind
from libs.contracts.execution import OrderAccepted, OrderPurpose, OrderRejected, OrderSubmitted
from libs.contracts.risk import ReleaseReason, RiskReleased
from libs.contracts.strategy import SuggestionGenerated
from libs.domain.orders import opening_order_id
from services.execution.opening import market_closed_reason
from tests.unit.execution import builders
from tests.unit.execution.builders import AT
from tests.unit.execution.fakes import Execution, others, reservation


def test_the_market_is_closed_outside_regular_hours_only() -> None:
    assert market_closed_reason(AT) is None  # 11:00 New York, a Tuesday
    evening = market_closed_reason(AT.replace(hour=22))
    assert evening is not None
    assert "2025-06-03 18:00 New York" in evening


async def test_a_reservation_is_recorded_before_it_is_sent_and_answered() -> None:
    execution = Execution()
    reserved = await execution.reserve()
    order_id = opening_order_id(reserved.reservation_id)
    (submitted,) = execution.of(OrderSubmitted)
    assert submitted.order_id == order_id
    assert submitted.purpose is OrderPurpose.OPEN
    assert submitted.causation_id == reserved.event_id
    assert execution.broker.placed == []  # not sent before it is recorded
    await execution.settle()
    (accepted,) = execution.of(OrderAccepted, order_id=order_id)
    assert accepted.causation_id == submitted.event_id
    assert [r.client_tag for r in execution.broker.placed] == [submitted.client_tag]
    assert execution.metrics.send_latency  # measured from the reaction


async def test_the_same_reservation_twice_records_and_sends_one_order() -> None:
    execution = Execution()
    reserved = await execution.reserve()
    await execution.opener.on_reserved(reserved)
    await execution.settle()
    await execution.opener.on_reserved(reserved)
    await execution.settle()
    assert len(execution.of(OrderSubmitted)) == 1
    assert len(execution.broker.placed) == 1


async def test_after_hours_the_order_is_recorded_then_refused_market_closed() -> None:
    execution = Execution()
    execution.clock.set(AT + timedelta(hours=8))
    reserved = await execution.reserve()
    await execution.settle()
    (rejected,) = execution.of(OrderRejected)
    assert rejected.order_id == opening_order_id(reserved.reservation_id)
    assert rejected.kind is ErrorKind.MARKET_CLOSED
    assert execution.broker.placed == []


async def test_a_released_reservation_or_an_unknown_suggestion_gets_no_order() -> None:
    execution = Execution()
    suggestion = builders.suggestion()
    released = reservation(suggestion)
    execution.given(
        SuggestionGenerated(**others(), suggestion=suggestion),
        RiskReleased(
            **others(),
            reservation_id=released.reservation_id,
            suggestion_id=suggestion.suggestion_id,
            amount=released.amount,
            reason=ReleaseReason.EXPIRED,
        ),
    )
    await execution.opener.on_reserved(released)
    unknown = Execution()
    await unknown.opener.on_reserved(reservation(suggestion))
    assert execution.published == []
    assert unknown.published == []
    errors = unknown.service_metrics.registry.get_sample_value(
        "senex_errors_total", {"service": "execution", "kind": ErrorKind.NOT_FOUND.value}
    )
    assert errors == 1
