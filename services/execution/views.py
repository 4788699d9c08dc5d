"""Execution's orders as its commands see them (pure): lookups, views, re-pricing.

No I/O: each function reads the folded state (or one order record) and returns an
answer or raises the error the command replies with.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from uuid import UUID

from libs.contracts.errors import InvalidState, NotFound, ValidationFailed
from libs.contracts.execution import OrderLeg, OrderPurpose, OrderStatus, OrderView
from services.execution.core import InvalidOrder, OrderSpec, position_id_for, replacement_order
from services.execution.projection import OrderBook, OrderRecord

#: The statuses of an order the broker can re-price (it works, maybe partly filled).
REPRICEABLE = frozenset({OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED})


def find_record(book: OrderBook, account: str, order_id: UUID) -> OrderRecord:
    """The order ``order_id`` of ``account``; `NotFound` when the account has none such."""
    record = book.orders.get(order_id)
    if record is None:
        raise NotFound(
            f"order {order_id} not found for account {account}",
            details={"order_id": str(order_id)},
        )
    return record


def order_view(record: OrderRecord, positions: Collection[UUID]) -> OrderView:
    """The query form of an order; a filled opening names the position it opened
    (when ``positions``, the positions opened, holds it)."""
    position_id = record.position_id
    if position_id is None and record.purpose is OrderPurpose.OPEN:
        opened = position_id_for(record.order_id)
        position_id = opened if opened in positions else None
    return OrderView(
        order_id=record.order_id,
        client_tag=record.client_tag,
        status=record.status,
        purpose=record.purpose,
        underlying=record.underlying,
        legs=record.legs,
        limit_price=record.limit_price,
        time_in_force=record.time_in_force,
        broker_order_id=record.broker_order_id,
        suggestion_id=record.suggestion_id,
        position_id=position_id,
        spread_kind=record.spread_kind,
        fills=tuple(record.fills.values()),
        submitted_at=record.submitted_at,
        updated_at=record.updated_at,
        reason=record.reason,
        replaced_by_order_id=record.replaced_by_order_id,
    )


def listed(book: OrderBook, *, open_only: bool) -> list[OrderRecord]:
    """The account's orders (only those not ended when ``open_only``), newest first."""
    records = [r for r in book.orders.values() if not open_only or not r.status.is_terminal]
    records.sort(key=lambda r: r.submitted_at, reverse=True)
    return records


def cancellable(record: OrderRecord) -> None:
    """Raises `InvalidState` unless ``record`` can be cancelled at the broker now."""
    if record.status.is_terminal:
        raise InvalidState(f"order {record.order_id} is {record.status.value}")
    if record.broker_order_id is None:
        raise InvalidState(
            f"order {record.order_id} is still being sent to the broker; try again shortly"
        )


def spec_of(record: OrderRecord) -> OrderSpec:
    """The decision ``record`` was recorded from."""
    return OrderSpec(
        order_id=record.order_id,
        purpose=record.purpose,
        underlying=record.underlying,
        legs=record.legs,
        limit_price=record.limit_price,
        time_in_force=record.time_in_force,
        suggestion_id=record.suggestion_id,
        reservation_id=record.reservation_id,
        position_id=record.position_id,
        spread_kind=record.spread_kind,
        replaces_order_id=record.replaces_order_id,
    )


def remaining_legs(record: OrderRecord) -> Sequence[OrderLeg]:
    """The legs still unfilled (the broker re-prices only what is left); all legs when
    the fills cover every leg."""
    legs = [
        OrderLeg(
            symbol=leg.symbol,
            action=leg.action,
            quantity=leg.quantity - record.filled_quantity(leg.symbol),
        )
        for leg in record.legs
        if leg.quantity > record.filled_quantity(leg.symbol)
    ]
    return legs or list(record.legs)


def replacement(old: OrderRecord, order_id: UUID, limit_price: Decimal) -> OrderSpec:
    """The re-priced order ``order_id`` replacing the working closing order ``old``."""
    if not old.purpose.is_exit:
        raise InvalidState("only closing orders are re-priced")
    if old.status not in REPRICEABLE or old.broker_order_id is None:
        raise InvalidState(f"order {old.order_id} is {old.status.value}: nothing to re-price")
    try:
        return replacement_order(
            original=spec_of(old),
            order_id=order_id,
            limit_price=limit_price,
            remaining=remaining_legs(old),
        )
    except InvalidOrder as exc:
        raise ValidationFailed(str(exc), field="limit_price") from None
