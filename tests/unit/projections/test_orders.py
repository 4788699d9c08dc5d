"""The orders projection: lifecycle, fills by broker fill id, anomalies instead of crashes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import CancelReason, OrderAction, OrderStatus
from libs.domain.lifecycle import is_allowed, next_status
from services.execution.projection import ORDERS, OrderBook, apply
from tests.integration.replay.scenario import CALL_592, PUT_589, PUT_592, Script

ACCOUNT = "5WT00001"


def opening(s: Script) -> tuple[UUID, Event]:
    order = new_event_id()
    return order, s.open_submitted(order, new_event_id(), new_event_id())


def test_a_submitted_order_carries_its_decision() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    order = apply(OrderBook(), submitted).orders[order_id]
    assert order.status is OrderStatus.SUBMITTED
    assert order.limit_price == Decimal("3.70")
    assert [leg.quantity for leg in order.legs] == [2, 2, 1, 1]
    assert order.submitted_at == submitted.occurred_at
    assert order.fills == {}


def test_an_opening_order_fills_partly_then_completely() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    first = (
        s.fill(PUT_592, OrderAction.SELL_TO_OPEN, Decimal("9.15")),
        s.fill(PUT_589, OrderAction.BUY_TO_OPEN, Decimal("8.05")),
    )
    rest = (
        s.fill(PUT_592, OrderAction.SELL_TO_OPEN, Decimal("9.15")),
        s.fill(PUT_589, OrderAction.BUY_TO_OPEN, Decimal("8.05")),
        s.fill(CALL_592, OrderAction.SELL_TO_OPEN, Decimal("8.55")),
    )
    book = ORDERS.fold([submitted, s.accepted(order_id), s.partially_filled(order_id, first)])
    order = book.orders[order_id]
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.broker_order_id == f"B-{order_id.hex[:8]}"
    assert order.filled_quantity(PUT_592) == 1

    order = apply(book, s.filled(order_id, first + rest)).orders[order_id]
    assert order.status is OrderStatus.FILLED
    assert len(order.fills) == 5
    assert order.filled_quantity(PUT_592) == 2
    assert order.filled_quantity(CALL_592) == 1


def test_a_cumulative_fill_report_adds_each_broker_fill_once() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    one = s.fill(PUT_592, OrderAction.SELL_TO_OPEN, Decimal("9.15"))
    two = s.fill(PUT_589, OrderAction.BUY_TO_OPEN, Decimal("8.05"))
    book = ORDERS.fold(
        [
            submitted,
            s.partially_filled(order_id, (one,)),
            s.partially_filled(order_id, (one, two)),
        ]
    )
    assert sorted(book.orders[order_id].fills) == sorted([one.broker_fill_id, two.broker_fill_id])


def test_a_redelivered_event_changes_nothing() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    accepted = s.accepted(order_id)
    book = ORDERS.fold([submitted, accepted])
    assert apply(book, accepted) is book
    assert apply(book, submitted) is book


def test_a_fill_after_a_cancel_is_an_anomaly_not_a_crash() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    late = s.filled(order_id, (s.fill(PUT_592, OrderAction.SELL_TO_OPEN, Decimal("9.15")),))
    book = ORDERS.fold([submitted, s.cancelled(order_id, CancelReason.USER_REQUESTED), late])
    order = book.orders[order_id]
    assert order.status is OrderStatus.CANCELLED
    assert order.fills == {}
    assert [(a.event_id, a.message) for a in order.anomalies] == [
        (late.event_id, "OrderFilled is not allowed from CANCELLED")
    ]
    assert apply(book, late) is book


def test_a_second_submission_of_one_order_is_an_anomaly() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    again = s.open_submitted(order_id, new_event_id(), new_event_id(), limit="3.60")
    order = ORDERS.fold([submitted, again]).orders[order_id]
    assert order.limit_price == Decimal("3.70")
    assert order.anomalies[0].event_id == again.event_id


def test_an_event_for_an_unknown_order_is_kept_on_the_book() -> None:
    s = Script(ACCOUNT)
    stray = s.accepted(new_event_id())
    book = apply(OrderBook(), stray)
    assert book.orders == {}
    assert [a.event_id for a in book.anomalies] == [stray.event_id]
    assert apply(book, stray) is book


def test_a_rejection_keeps_the_brokers_reason() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    order = ORDERS.fold([submitted, s.order_rejected(order_id)]).orders[order_id]
    assert order.status is OrderStatus.REJECTED
    assert order.rejection_kind is ErrorKind.ORDER_REJECTED
    assert order.reason == "Insufficient buying power for this order"


def test_a_replaced_order_names_its_replacement() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    replacement = new_event_id()
    book = ORDERS.fold([submitted, s.accepted(order_id), s.replaced(order_id, replacement)])
    assert book.orders[order_id].status is OrderStatus.REPLACED
    assert book.orders[order_id].replaced_by_order_id == replacement


def test_cancel_and_expiry_record_how_the_order_ended() -> None:
    s = Script(ACCOUNT)
    order_id, submitted = opening(s)
    cancelled = ORDERS.fold([submitted, s.cancelled(order_id, CancelReason.STOP_LOSS)])
    assert cancelled.orders[order_id].cancel_reason is CancelReason.STOP_LOSS
    assert cancelled.orders[order_id].reason == "cancelled (stop_loss)"


# --- any sequence of lifecycle events -----------------------------------------------------

_Build = Callable[[Script, UUID], Event]
LIFECYCLE_EVENTS: dict[str, _Build] = {
    "OrderSubmitted": lambda s, o: s.open_submitted(o, new_event_id(), new_event_id()),
    "OrderAccepted": lambda s, o: s.accepted(o),
    "OrderPartiallyFilled": lambda s, o: s.partially_filled(
        o, (s.fill(PUT_592, OrderAction.SELL_TO_OPEN, Decimal("9.15")),)
    ),
    "OrderFilled": lambda s, o: s.filled(
        o, (s.fill(PUT_589, OrderAction.BUY_TO_OPEN, Decimal("8.05")),)
    ),
    "OrderRejected": lambda s, o: s.order_rejected(o),
    "OrderCancelled": lambda s, o: s.cancelled(o, CancelReason.BROKER),
    "OrderExpired": lambda s, o: s.order_expired(o),
    "OrderReplaced": lambda s, o: s.replaced(o, new_event_id()),
}


@given(st.lists(st.sampled_from(sorted(LIFECYCLE_EVENTS)), max_size=12))
def test_any_sequence_follows_the_table_and_records_every_refusal(types: list[str]) -> None:
    s = Script(ACCOUNT)
    order_id = new_event_id()
    book = OrderBook()
    status: OrderStatus | None = None
    refused = 0
    for type_name in types:
        event = LIFECYCLE_EVENTS[type_name](s, order_id)
        before = book.orders.get(order_id)
        book = apply(book, event)
        if is_allowed(status, event.type):
            status = next_status(status, event.type)
        else:
            refused += 1
            if before is not None and before.status.is_terminal:
                assert book.orders[order_id].status is before.status
    order = book.orders.get(order_id)
    assert (order.status if order else None) is status
    anomalies = (order.anomalies if order else ()) + book.anomalies
    assert len(anomalies) == refused
