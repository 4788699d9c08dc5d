"""Recording: locks per order, envelopes chained per order, orders counted by status."""

from __future__ import annotations

from uuid import uuid4

from libs.contracts.execution import OrderAccepted, OrderPartiallyFilled, OrderSubmitted
from services.execution.core import opening_order
from services.execution.recording import OrderLocks
from tests.unit.execution import builders
from tests.unit.execution.builders import D, trident_fills
from tests.unit.execution.fakes import ACCOUNT, Execution, others, reservation


def test_each_order_has_its_own_report_and_decision_locks() -> None:
    locks = OrderLocks()
    one, two = uuid4(), uuid4()
    assert locks.report(one) is locks.report(one)
    assert locks.decision(one) is locks.decision(one)
    assert locks.report(one) is not locks.decision(one)
    assert locks.report(one) is not locks.report(two)


async def test_a_submitted_decision_is_folded_and_its_account_followed() -> None:
    execution = Execution()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    reserved = reservation(builders.suggestion())
    await execution.recorder.submit(ACCOUNT, spec, reserved.causation())
    await execution.settle()
    (submitted,) = execution.of(OrderSubmitted)
    assert submitted.producer == "execution"
    assert submitted.causation_id == reserved.event_id
    assert submitted.correlation_id == reserved.correlation_id
    assert execution.state.order(spec.order_id) is not None  # read right after
    assert ACCOUNT in execution.feeds
    env = execution.recorder.order_envelope(ACCOUNT, spec.order_id)
    assert env["causation_id"] == submitted.event_id
    assert env["correlation_id"] == submitted.correlation_id


async def test_an_order_event_is_counted_by_the_status_the_order_reached() -> None:
    execution = Execution()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    recorder = execution.recorder
    await recorder.publish(OrderSubmitted(**others(), **spec.submitted_fields()))
    await recorder.publish(
        OrderPartiallyFilled(
            **recorder.order_envelope(ACCOUNT, spec.order_id),
            order_id=spec.order_id,
            broker_order_id="7",
            legs=trident_fills()[:1],
        )
    )
    # A late acceptance after a partial fill leaves the order PARTIALLY_FILLED.
    await recorder.publish(
        OrderAccepted(
            **recorder.order_envelope(ACCOUNT, spec.order_id),
            order_id=spec.order_id,
            broker_order_id="7",
        )
    )
    registry = execution.service_metrics.registry

    def count(status: str) -> float | None:
        return registry.get_sample_value(
            "senex_orders_total", {"service": "execution", "status": status}
        )

    assert count("SUBMITTED") == 1
    assert count("PARTIALLY_FILLED") == 2
    assert count("WORKING") is None
