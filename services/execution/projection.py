"""The orders of an account, folded from execution's events (pure).

Each order follows `libs.domain.lifecycle`. An event the table refuses (a
fill after a cancel, anything after a terminal status, an event for an order never
submitted) leaves the order as it was and is recorded as an `Anomaly`: on the order,
or on the book when the order is unknown. The live fold runs this same code, so it
records the same anomaly rather than raising: a raising handler would be redelivered
and then dead-lettered, and the live state would silently differ from the replay of
the log, which holds the event. The shell surfaces new anomalies (log, metric).

Fill reports are cumulative; fills are merged by broker fill id, so a report repeated
or re-sent with more fills adds each fill once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from libs.contracts.envelope import Event
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import (
    CancelReason,
    LegFill,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderLeg,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.strategy import SpreadKind
from libs.domain.lifecycle import InvalidTransition, next_status
from libs.domain.orders import OrderRequest
from libs.projections import Anomaly, AppliedIds, Handlers, Projection, with_anomaly
from libs.projections.framework import PMap, refused


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order decision as the events so far describe it."""

    order_id: UUID
    status: OrderStatus
    purpose: OrderPurpose
    underlying: str
    client_tag: str
    legs: tuple[OrderLeg, ...]
    limit_price: Decimal
    """Signed: + credit, - debit; per unit of the leg ratio."""
    time_in_force: TimeInForce
    submitted_at: datetime
    updated_at: datetime
    suggestion_id: UUID | None = None
    reservation_id: UUID | None = None
    position_id: UUID | None = None
    spread_kind: SpreadKind | None = None
    replaces_order_id: UUID | None = None
    replaced_by_order_id: UUID | None = None
    broker_order_id: str | None = None
    fills: PMap[str, LegFill] = field(default_factory=PMap)
    """Every fill so far, by broker fill id."""
    rejection_kind: ErrorKind | None = None
    cancel_reason: CancelReason | None = None
    reason: str | None = None
    """The broker's rejection reason or the cancellation message."""
    anomalies: tuple[Anomaly, ...] = ()
    applied: AppliedIds = field(default=frozenset(), repr=False)

    def filled_quantity(self, symbol: str) -> int:
        """Contracts of ``symbol`` filled so far."""
        return sum(fill.quantity for fill in self.fills.values() if fill.symbol == symbol)

    def request(self) -> OrderRequest:
        """What the adapter sends for this order (always a limit order)."""
        return OrderRequest(
            underlying=self.underlying,
            legs=self.legs,
            limit_price=self.limit_price,
            time_in_force=self.time_in_force,
            client_tag=self.client_tag,
        )


@dataclass(frozen=True, slots=True)
class OrderBook:
    """Every order of the account by ``order_id``, and events naming unknown orders."""

    orders: PMap[UUID, OrderRecord] = field(default_factory=PMap)
    anomalies: tuple[Anomaly, ...] = ()


_handlers: Handlers[OrderBook] = Handlers()


def _put(book: OrderBook, order: OrderRecord) -> OrderBook:
    return replace(book, orders=book.orders.set(order.order_id, order))


def _transition(
    book: OrderBook,
    event: Event,
    order_id: UUID,
    change: Callable[[OrderRecord], OrderRecord] = lambda order: order,
) -> OrderBook:
    """Move ``order_id`` along the table with ``event``, then apply ``change``."""
    order = book.orders.get(order_id)
    if order is None:
        message = f"{event.type} for order {order_id}, never submitted"
        anomalies = with_anomaly(book.anomalies, event, message)
        return book if anomalies is book.anomalies else replace(book, anomalies=anomalies)
    if event.event_id in order.applied:
        return book
    applied = order.applied | {event.event_id}
    try:
        status = next_status(order.status, event.type)
    except InvalidTransition as exc:
        return _put(book, refused(order, event, str(exc)))
    moved = replace(order, status=status, updated_at=event.occurred_at, applied=applied)
    return _put(book, change(moved))


@_handlers.on(OrderSubmitted)
def _submitted(book: OrderBook, event: OrderSubmitted) -> OrderBook:
    order = book.orders.get(event.order_id)
    if order is not None:
        return _transition(book, event, event.order_id)
    return _put(
        book,
        OrderRecord(
            order_id=event.order_id,
            status=next_status(None, event.type),
            purpose=event.purpose,
            underlying=event.underlying,
            client_tag=event.client_tag,
            legs=event.legs,
            limit_price=event.limit_price,
            time_in_force=event.time_in_force,
            submitted_at=event.occurred_at,
            updated_at=event.occurred_at,
            suggestion_id=event.suggestion_id,
            reservation_id=event.reservation_id,
            position_id=event.position_id,
            spread_kind=event.spread_kind,
            replaces_order_id=event.replaces_order_id,
            applied=frozenset({event.event_id}),
        ),
    )


@_handlers.on(OrderAccepted)
def _accepted(book: OrderBook, event: OrderAccepted) -> OrderBook:
    return _transition(
        book, event, event.order_id, lambda o: replace(o, broker_order_id=event.broker_order_id)
    )


def _filled(book: OrderBook, event: OrderPartiallyFilled | OrderFilled) -> OrderBook:
    def merge(order: OrderRecord) -> OrderRecord:
        new = {f.broker_fill_id: f for f in event.legs if f.broker_fill_id not in order.fills}
        return replace(
            order,
            fills=order.fills.update(new),
            broker_order_id=order.broker_order_id or event.broker_order_id,
        )

    return _transition(book, event, event.order_id, merge)


_handlers.on(OrderPartiallyFilled)(_filled)
_handlers.on(OrderFilled)(_filled)


@_handlers.on(OrderRejected)
def _rejected(book: OrderBook, event: OrderRejected) -> OrderBook:
    return _transition(
        book,
        event,
        event.order_id,
        lambda o: replace(
            o,
            rejection_kind=event.kind,
            reason=event.reason,
            broker_order_id=o.broker_order_id or event.broker_order_id,
        ),
    )


@_handlers.on(OrderCancelled)
def _cancelled(book: OrderBook, event: OrderCancelled) -> OrderBook:
    return _transition(
        book,
        event,
        event.order_id,
        lambda o: replace(o, cancel_reason=event.reason, reason=event.message),
    )


@_handlers.on(OrderExpired)
def _expired(book: OrderBook, event: OrderExpired) -> OrderBook:
    return _transition(book, event, event.order_id)


@_handlers.on(OrderReplaced)
def _replaced(book: OrderBook, event: OrderReplaced) -> OrderBook:
    return _transition(
        book,
        event,
        event.order_id,
        lambda o: replace(o, replaced_by_order_id=event.replacement_order_id),
    )


#: The orders projection, as execution and ``senex replay`` fold it.
ORDERS: Projection[OrderBook] = Projection("orders", OrderBook(), _handlers)


def apply(book: OrderBook, event: Event) -> OrderBook:
    """The book after ``event`` (unchanged for events it does not fold)."""
    return _handlers.apply(book, event)
