"""The positions of an account as the monitor sees them (pure).

A position is opened with its three (or two) spreads, gets an exit order per spread,
is valued by ``PositionUpdated`` (marks, closing costs and unrealised P&L taken exactly
as the event carries them), closes spread by spread and then as a whole. Attention
flags (``PositionNeedsAttention``) may come before the opening: a partly filled opening
order is flagged at its first fill, and ``PositionAttentionCleared`` lifts the flag once
it filled completely.

Every event but ``PositionUpdated`` is applied once per event id. Valuations arrive
every few seconds for weeks, so rather than remembering each id the position keeps the
time of its latest valuation and the ids valued at that instant: an older valuation
(a redelivery, or a late copy) is ignored, and a redelivery of the latest changes
nothing. Events the lifecycle refuses are kept as an `Anomaly`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from libs.contracts.envelope import Event
from libs.contracts.execution import OrderPurpose
from libs.contracts.market import Greeks, Quote
from libs.contracts.positions import (
    AttentionReason,
    CloseReason,
    ExitOrderPlaced,
    HeldLeg,
    PositionAttentionCleared,
    PositionClosed,
    PositionNeedsAttention,
    PositionOpened,
    PositionSpread,
    PositionStatus,
    PositionUpdated,
    SpreadClosed,
    SpreadMark,
)
from libs.contracts.strategy import SpreadKind
from libs.projections import Anomaly, AppliedIds, Handlers, Projection, with_anomaly
from libs.projections.framework import PMap, refused

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SpreadRecord:
    """One spread of a position: as opened, its exit order, how it closed."""

    spread: PositionSpread
    open: bool = True
    exit_order_id: UUID | None = None
    """The latest exit order placed for it."""
    exit_purpose: OrderPurpose | None = None
    exit_limit_price: Decimal | None = None
    exit_reason: str | None = None
    close_reason: CloseReason | None = None
    closing_order_id: UUID | None = None
    exit_debit: Decimal | None = None
    realized_pnl: Decimal | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Attention:
    """Why a position is flagged for a human."""

    reason: AttentionReason
    message: str
    flagged_at: datetime
    order_id: UUID | None = None
    held_legs: tuple[HeldLeg, ...] = ()


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position; the opening fields are None for a flagged opening that never filled."""

    position_id: UUID
    underlying: str
    status: PositionStatus = PositionStatus.OPEN
    app_managed: bool = True
    active: bool = True
    suggestion_id: UUID | None = None
    opening_order_id: UUID | None = None
    expiration: date | None = None
    width: Decimal | None = None
    max_risk: Decimal | None = None
    total_entry_credit: Decimal | None = None
    spreads: tuple[SpreadRecord, ...] = ()
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    needs_attention: bool = False
    attention: Attention | None = None
    realized_pnl: Decimal = _ZERO
    """Sum over the closed spreads; the PositionClosed figure once closed."""
    unrealized_pnl: Decimal | None = None
    marks: tuple[Quote, ...] = ()
    """The quotes of the latest valuation."""
    spread_marks: tuple[SpreadMark, ...] = ()
    """The open spreads' closing costs and unrealised P&L from the latest valuation."""
    dte: int | None = None
    greeks: Greeks | None = None
    valued_at: datetime | None = None
    anomalies: tuple[Anomaly, ...] = ()
    applied: AppliedIds = field(default=frozenset(), repr=False)
    valued_ids: AppliedIds = field(default=frozenset(), repr=False)
    """Ids of the valuations applied at ``valued_at``."""

    def spread(self, kind: SpreadKind) -> SpreadRecord | None:
        """The spread of ``kind``, or None when it was not traded."""
        return next((s for s in self.spreads if s.spread.kind is kind), None)


@dataclass(frozen=True, slots=True)
class PositionBook:
    """Every position of the account by id, and events naming unknown positions."""

    positions: PMap[UUID, PositionRecord] = field(default_factory=PMap)
    anomalies: tuple[Anomaly, ...] = ()


_handlers: Handlers[PositionBook] = Handlers()


def _put(book: PositionBook, position: PositionRecord) -> PositionBook:
    return replace(book, positions=book.positions.set(position.position_id, position))


def _once(
    book: PositionBook,
    event: Event,
    position_id: UUID,
    change: Callable[[PositionRecord], PositionRecord | str],
) -> PositionBook:
    """Apply ``change`` to the position once per event; a returned string is an anomaly."""
    position = book.positions.get(position_id)
    if position is None:
        message = f"{event.type} for position {position_id}, never opened or flagged"
        anomalies = with_anomaly(book.anomalies, event, message)
        return book if anomalies is book.anomalies else replace(book, anomalies=anomalies)
    if event.event_id in position.applied:
        return book
    applied = position.applied | {event.event_id}
    changed = change(position)
    if isinstance(changed, str):
        return _put(book, refused(position, event, changed))
    return _put(book, replace(changed, applied=applied))


def _with_spread(
    position: PositionRecord, kind: SpreadKind, change: Callable[[SpreadRecord], SpreadRecord]
) -> PositionRecord:
    spreads = tuple(change(s) if s.spread.kind is kind else s for s in position.spreads)
    return replace(position, spreads=spreads)


@_handlers.on(PositionOpened)
def _opened(book: PositionBook, event: PositionOpened) -> PositionBook:
    def open_(position: PositionRecord) -> PositionRecord | str:
        if position.opened_at is not None:
            return f"position {event.position_id} was already opened"
        return replace(
            position,
            app_managed=True,
            suggestion_id=event.suggestion_id,
            opening_order_id=event.opening_order_id,
            expiration=event.expiration,
            width=event.width,
            max_risk=event.max_risk,
            total_entry_credit=event.total_entry_credit,
            spreads=tuple(SpreadRecord(spread) for spread in event.spreads),
            opened_at=event.occurred_at,
        )

    if event.position_id not in book.positions:
        book = _put(book, PositionRecord(event.position_id, event.underlying))
    return _once(book, event, event.position_id, open_)


@_handlers.on(ExitOrderPlaced)
def _exit_placed(book: PositionBook, event: ExitOrderPlaced) -> PositionBook:
    def place(position: PositionRecord) -> PositionRecord | str:
        spread = position.spread(event.spread_kind)
        if spread is None or not spread.open:
            return f"exit order for {event.spread_kind}, which is not an open spread"
        return _with_spread(
            position,
            event.spread_kind,
            lambda s: replace(
                s,
                exit_order_id=event.order_id,
                exit_purpose=event.purpose,
                exit_limit_price=event.limit_price,
                exit_reason=event.reason,
            ),
        )

    return _once(book, event, event.position_id, place)


def _stale(position: PositionRecord, event: PositionUpdated) -> bool:
    """An older valuation than the latest, or one already applied at the latest instant."""
    at = position.valued_at
    return at is not None and (event.occurred_at < at or event.event_id in position.valued_ids)


@_handlers.on(PositionUpdated)
def _updated(book: PositionBook, event: PositionUpdated) -> PositionBook:
    position = book.positions.get(event.position_id)
    if position is not None and _stale(position, event):
        return book  # whatever became of the position since
    if position is None or position.status is PositionStatus.CLOSED:
        return _once(book, event, event.position_id, lambda _: "valuation of a closed position")
    valued_ids = (
        position.valued_ids | {event.event_id}
        if position.valued_at == event.occurred_at
        else frozenset({event.event_id})
    )
    return _put(
        book,
        replace(
            position,
            spread_marks=event.spreads,
            unrealized_pnl=event.unrealized_pnl,
            marks=event.marks,
            dte=event.dte,
            greeks=event.position_greeks,
            valued_at=event.occurred_at,
            valued_ids=valued_ids,
        ),
    )


@_handlers.on(SpreadClosed)
def _spread_closed(book: PositionBook, event: SpreadClosed) -> PositionBook:
    def close(position: PositionRecord) -> PositionRecord | str:
        spread = position.spread(event.spread_kind)
        if spread is None or not spread.open:
            return f"{event.spread_kind} is not an open spread of the position"
        closed = _with_spread(
            position,
            event.spread_kind,
            lambda s: replace(
                s,
                open=False,
                close_reason=event.reason,
                closing_order_id=event.closing_order_id,
                exit_debit=event.exit_debit,
                realized_pnl=event.realized_pnl,
                closed_at=event.occurred_at,
            ),
        )
        realized = sum((s.realized_pnl or _ZERO for s in closed.spreads), _ZERO)
        # A closed spread's last mark no longer describes anything open.
        marks = tuple(m for m in closed.spread_marks if m.kind is not event.spread_kind)
        return replace(closed, realized_pnl=realized, spread_marks=marks)

    return _once(book, event, event.position_id, close)


@_handlers.on(PositionClosed)
def _closed(book: PositionBook, event: PositionClosed) -> PositionBook:
    def close(position: PositionRecord) -> PositionRecord | str:
        if position.status is PositionStatus.CLOSED:
            return f"position {event.position_id} was already closed"
        return replace(
            position,
            status=PositionStatus.CLOSED,
            closed_at=event.occurred_at,
            realized_pnl=event.realized_pnl,
            unrealized_pnl=None,
            spread_marks=(),
        )

    return _once(book, event, event.position_id, close)


@_handlers.on(PositionNeedsAttention)
def _flagged(book: PositionBook, event: PositionNeedsAttention) -> PositionBook:
    def flag(position: PositionRecord) -> PositionRecord:
        attention = Attention(
            reason=event.reason,
            message=event.message,
            flagged_at=event.occurred_at,
            order_id=event.order_id,
            held_legs=event.held_legs,
        )
        return replace(
            position,
            needs_attention=True,
            attention=attention,
            app_managed=event.app_managed,
            active=event.active,
        )

    if event.position_id not in book.positions:
        # A partly filled opening is flagged before any PositionOpened.
        book = _put(book, PositionRecord(event.position_id, event.underlying))
    return _once(book, event, event.position_id, flag)


@_handlers.on(PositionAttentionCleared)
def _cleared(book: PositionBook, event: PositionAttentionCleared) -> PositionBook:
    def clear(position: PositionRecord) -> PositionRecord | str:
        if not position.needs_attention:
            return "attention cleared on a position that is not flagged"
        # The flag of a partly filled opening clears once it filled completely, which
        # makes the position app-managed; a flag on a position that never opened does not.
        return replace(
            position,
            needs_attention=False,
            attention=None,
            app_managed=position.opened_at is not None,
        )

    return _once(book, event, event.position_id, clear)


#: The positions projection, as the position monitor and ``senex replay`` fold it.
POSITIONS: Projection[PositionBook] = Projection("positions", PositionBook(), _handlers)


def apply(book: PositionBook, event: Event) -> PositionBook:
    """The book after ``event`` (unchanged for events it does not fold)."""
    return _handlers.apply(book, event)
