"""The order lifecycle table, walked pair by pair against the lifecycle written out here."""

from __future__ import annotations

import itertools

import pytest

from libs.contracts.execution import OrderStatus
from libs.domain.lifecycle import (
    ORDER_EVENTS,
    TRANSITIONS,
    InvalidTransition,
    announced_status,
    is_allowed,
    next_status,
)
from services.execution.projection import ORDERS

S = OrderStatus
#: Every allowed move, from the lifecycle in libs/domain/lifecycle.py's docstring.
EXPECTED: dict[tuple[OrderStatus | None, str], OrderStatus] = {
    (None, "OrderSubmitted"): S.SUBMITTED,
    (S.SUBMITTED, "OrderAccepted"): S.WORKING,
    (S.SUBMITTED, "OrderPartiallyFilled"): S.PARTIALLY_FILLED,
    (S.SUBMITTED, "OrderFilled"): S.FILLED,
    (S.SUBMITTED, "OrderRejected"): S.REJECTED,
    (S.SUBMITTED, "OrderCancelled"): S.CANCELLED,
    (S.SUBMITTED, "OrderExpired"): S.EXPIRED,
    (S.WORKING, "OrderPartiallyFilled"): S.PARTIALLY_FILLED,
    (S.WORKING, "OrderFilled"): S.FILLED,
    (S.WORKING, "OrderRejected"): S.REJECTED,
    (S.WORKING, "OrderCancelled"): S.CANCELLED,
    (S.WORKING, "OrderExpired"): S.EXPIRED,
    (S.WORKING, "OrderReplaced"): S.REPLACED,
    (S.PARTIALLY_FILLED, "OrderAccepted"): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, "OrderPartiallyFilled"): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, "OrderFilled"): S.FILLED,
    (S.PARTIALLY_FILLED, "OrderCancelled"): S.CANCELLED,
    (S.PARTIALLY_FILLED, "OrderExpired"): S.EXPIRED,
    (S.PARTIALLY_FILLED, "OrderReplaced"): S.REPLACED,
}
STATUSES: list[OrderStatus | None] = [None, *OrderStatus]
EVENT_TYPES = [event.__name__ for event in ORDER_EVENTS]
PAIRS = list(itertools.product(STATUSES, EVENT_TYPES))


def test_the_walk_covers_every_status_and_event_type() -> None:
    assert len(PAIRS) == 9 * 8
    assert set(EVENT_TYPES) == {
        "OrderSubmitted",
        "OrderAccepted",
        "OrderPartiallyFilled",
        "OrderFilled",
        "OrderRejected",
        "OrderCancelled",
        "OrderExpired",
        "OrderReplaced",
    }


@pytest.mark.parametrize(
    ("status", "event_type"), PAIRS, ids=[f"{s.value if s else 'NEW'}-{e}" for s, e in PAIRS]
)
def test_every_pair(status: OrderStatus | None, event_type: str) -> None:
    expected = EXPECTED.get((status, event_type))
    assert is_allowed(status, event_type) is (expected is not None)
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            next_status(status, event_type)
        assert refused.value.status is status
        assert refused.value.event_type == event_type
    else:
        assert next_status(status, event_type) is expected


def test_the_table_holds_nothing_beyond_the_walk() -> None:
    assert dict(TRANSITIONS) == EXPECTED


def test_nothing_leaves_a_terminal_status() -> None:
    for status, event_type in PAIRS:
        if status is not None and status.is_terminal:
            assert not is_allowed(status, event_type)


def test_a_refusal_names_both_sides() -> None:
    with pytest.raises(InvalidTransition, match="OrderFilled is not allowed from CANCELLED"):
        next_status(OrderStatus.CANCELLED, "OrderFilled")
    with pytest.raises(InvalidTransition, match="OrderAccepted is not allowed from no order yet"):
        next_status(None, "OrderAccepted")


def test_the_orders_projection_folds_every_lifecycle_event() -> None:
    assert ORDERS.handlers.event_types == frozenset(ORDER_EVENTS)


@pytest.mark.parametrize("event_type", [cls.__name__ for cls in ORDER_EVENTS])
def test_the_status_an_event_announces_is_where_the_table_takes_it_from_a_live_order(
    event_type: str,
) -> None:
    """`status_of` (what the gateway and the monitor show) agrees with the table for
    every order that has not yet been filled in part (the one status it may differ from:
    a late acceptance after a partial fill, which the table keeps partly filled)."""
    announced = announced_status(event_type)
    froms = [s for s in (None, S.SUBMITTED, S.WORKING) if is_allowed(s, event_type)]
    assert froms, f"{event_type} is allowed from no live status"
    assert {next_status(s, event_type) for s in froms} == {announced}


@pytest.mark.parametrize("event_type", ["RiskReserved", "PositionOpened", "ExitOrderPlaced", ""])
def test_only_order_events_announce_a_status(event_type: str) -> None:
    assert announced_status(event_type) is None
