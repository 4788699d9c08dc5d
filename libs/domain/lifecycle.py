"""The order lifecycle as one table: ``(status, event type) -> next status``.

``None`` stands for "no order yet": only ``OrderSubmitted`` leaves it. Every pair
missing from `TRANSITIONS` is refused; in particular nothing leaves a terminal status
(FILLED, CANCELLED, REJECTED, EXPIRED, REPLACED). Choices worth knowing:

* SUBMITTED may go straight to a fill, a cancel or an expiry: the broker's answer to a
  place request (or the lookup after a timeout) can already report any of them.
* WORKING may be REJECTED: an exchange can refuse an order the broker had accepted.
* A late ``OrderAccepted`` after a partial fill keeps PARTIALLY_FILLED: the broker's
  acknowledgement and its first fill can reach us in either order.
* PARTIALLY_FILLED may be REPLACED: re-pricing the rest of a partly filled exit.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from libs.contracts.envelope import Event
from libs.contracts.execution import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderSubmitted,
)

#: Every event class of the order lifecycle.
ORDER_EVENTS: tuple[type[Event], ...] = (
    OrderSubmitted,
    OrderAccepted,
    OrderPartiallyFilled,
    OrderFilled,
    OrderRejected,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
)

_SUBMITTED = OrderSubmitted.__name__
_ACCEPTED = OrderAccepted.__name__
_PARTIAL = OrderPartiallyFilled.__name__
_FILLED = OrderFilled.__name__
_REJECTED = OrderRejected.__name__
_CANCELLED = OrderCancelled.__name__
_EXPIRED = OrderExpired.__name__
_REPLACED = OrderReplaced.__name__

#: The allowed transitions; a pair absent from the table is refused.
TRANSITIONS: Mapping[tuple[OrderStatus | None, str], OrderStatus] = MappingProxyType(
    {
        (None, _SUBMITTED): OrderStatus.SUBMITTED,
        (OrderStatus.SUBMITTED, _ACCEPTED): OrderStatus.WORKING,
        (OrderStatus.SUBMITTED, _PARTIAL): OrderStatus.PARTIALLY_FILLED,
        (OrderStatus.SUBMITTED, _FILLED): OrderStatus.FILLED,
        (OrderStatus.SUBMITTED, _REJECTED): OrderStatus.REJECTED,
        (OrderStatus.SUBMITTED, _CANCELLED): OrderStatus.CANCELLED,
        (OrderStatus.SUBMITTED, _EXPIRED): OrderStatus.EXPIRED,
        (OrderStatus.WORKING, _PARTIAL): OrderStatus.PARTIALLY_FILLED,
        (OrderStatus.WORKING, _FILLED): OrderStatus.FILLED,
        (OrderStatus.WORKING, _REJECTED): OrderStatus.REJECTED,
        (OrderStatus.WORKING, _CANCELLED): OrderStatus.CANCELLED,
        (OrderStatus.WORKING, _EXPIRED): OrderStatus.EXPIRED,
        (OrderStatus.WORKING, _REPLACED): OrderStatus.REPLACED,
        (OrderStatus.PARTIALLY_FILLED, _ACCEPTED): OrderStatus.PARTIALLY_FILLED,
        (OrderStatus.PARTIALLY_FILLED, _PARTIAL): OrderStatus.PARTIALLY_FILLED,
        (OrderStatus.PARTIALLY_FILLED, _FILLED): OrderStatus.FILLED,
        (OrderStatus.PARTIALLY_FILLED, _CANCELLED): OrderStatus.CANCELLED,
        (OrderStatus.PARTIALLY_FILLED, _EXPIRED): OrderStatus.EXPIRED,
        (OrderStatus.PARTIALLY_FILLED, _REPLACED): OrderStatus.REPLACED,
    }
)


class InvalidTransition(Exception):
    """``event_type`` is not allowed from ``status``; the message names both sides."""

    def __init__(self, status: OrderStatus | None, event_type: str) -> None:
        side = "no order yet" if status is None else status.value
        super().__init__(f"{event_type} is not allowed from {side}")
        self.status = status
        self.event_type = event_type


def next_status(status: OrderStatus | None, event_type: str) -> OrderStatus:
    """The status after ``event_type``; raises `InvalidTransition` when not allowed."""
    try:
        return TRANSITIONS[(status, event_type)]
    except KeyError:
        raise InvalidTransition(status, event_type) from None


def is_allowed(status: OrderStatus | None, event_type: str) -> bool:
    """Whether ``event_type`` may follow ``status``."""
    return (status, event_type) in TRANSITIONS


#: The status each lifecycle event announces, whatever the status before it (the table
#: above says whether that move is allowed): what a reader that does not fold the whole
#: order (a WebSocket message, the monitor's view of its exits) shows.
_STATUS_OF: Mapping[str, OrderStatus] = MappingProxyType(
    {
        _SUBMITTED: OrderStatus.SUBMITTED,
        _ACCEPTED: OrderStatus.WORKING,
        _PARTIAL: OrderStatus.PARTIALLY_FILLED,
        _FILLED: OrderStatus.FILLED,
        _REJECTED: OrderStatus.REJECTED,
        _CANCELLED: OrderStatus.CANCELLED,
        _EXPIRED: OrderStatus.EXPIRED,
        _REPLACED: OrderStatus.REPLACED,
    }
)


def announced_status(event_type: str) -> OrderStatus | None:
    """The status an order lifecycle event of ``event_type`` announces; None for any
    other type."""
    return _STATUS_OF.get(event_type)


def status_of(event: Event) -> OrderStatus | None:
    """The status an order lifecycle event announces; None for any other event."""
    return announced_status(event.type)
