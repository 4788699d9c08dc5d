"""Risk usage of an account, folded from reservations and positions (pure).

Used risk (DOMAIN.md 4) = pending reservations + max risk of open app-managed
positions. A reservation is pending from ``RiskReserved`` until ``RiskReleased`` (its
order ended; a filled order hands the risk over to its position) or until a
``RiskReservationFailed`` for the same suggestion says nothing is set aside after all.
A position counts from ``PositionOpened`` (which only a completely filled opening
order produces, so it is app-managed) until ``PositionClosed``. Buying power and the
tolerance are not folded here: they come with the broker's balance and the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from libs.contracts.envelope import Event
from libs.contracts.errors import ErrorKind
from libs.contracts.positions import PositionClosed, PositionOpened
from libs.contracts.risk import (
    ReleaseReason,
    RiskReleased,
    RiskReservationFailed,
    RiskReserved,
)
from libs.projections import Anomaly, AppliedIds, Handlers, Projection, with_anomaly

_ZERO = Decimal(0)


class ReservationStatus(StrEnum):
    """Whether a reservation still holds risk."""

    PENDING = "PENDING"
    RELEASED = "RELEASED"
    FAILED = "FAILED"
    """A RiskReservationFailed for its suggestion followed: nothing is set aside."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Risk set aside for one approved suggestion."""

    reservation_id: UUID
    suggestion_id: UUID
    amount: Decimal
    limit_credit: Decimal
    reserved_at: datetime
    status: ReservationStatus = ReservationStatus.PENDING
    release_reason: ReleaseReason | None = None
    order_id: UUID | None = None
    ended_at: datetime | None = None
    anomalies: tuple[Anomaly, ...] = ()
    applied: AppliedIds = field(default=frozenset(), repr=False)


@dataclass(frozen=True, slots=True)
class ReservationFailure:
    """An approved suggestion that could not reserve risk."""

    suggestion_id: UUID
    reason: ErrorKind
    message: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """The max risk of one position, counted while it is open."""

    position_id: UUID
    max_risk: Decimal
    opened_at: datetime
    open: bool = True
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RiskUsage:
    """Reservations and positions of the account, with the totals they add up to.

    The totals are kept with the state (recomputed on every change) so readers need
    no arithmetic and the rendered state shows them.
    """

    reservations: Mapping[UUID, Reservation] = field(default_factory=dict)
    failures: Mapping[UUID, ReservationFailure] = field(default_factory=dict)
    """By the id of the RiskReservationFailed event."""
    positions: Mapping[UUID, PositionRisk] = field(default_factory=dict)
    reserved_risk: Decimal = _ZERO
    """Sum of pending reservations."""
    open_positions_max_risk: Decimal = _ZERO
    """Sum of max risk of open positions."""
    used_risk: Decimal = _ZERO
    """reserved_risk + open_positions_max_risk."""
    open_positions: int = 0
    anomalies: tuple[Anomaly, ...] = ()


_handlers: Handlers[RiskUsage] = Handlers()


def _totals(usage: RiskUsage) -> RiskUsage:
    reserved = sum(
        (r.amount for r in usage.reservations.values() if r.status is ReservationStatus.PENDING),
        _ZERO,
    )
    open_positions = [p for p in usage.positions.values() if p.open]
    at_risk = sum((p.max_risk for p in open_positions), _ZERO)
    return replace(
        usage,
        reserved_risk=reserved,
        open_positions_max_risk=at_risk,
        used_risk=reserved + at_risk,
        open_positions=len(open_positions),
    )


def _put_reservation(usage: RiskUsage, reservation: Reservation) -> RiskUsage:
    reservations = {**usage.reservations, reservation.reservation_id: reservation}
    return _totals(replace(usage, reservations=reservations))


def _anomaly(usage: RiskUsage, event: Event, message: str) -> RiskUsage:
    anomalies = with_anomaly(usage.anomalies, event, message)
    return usage if anomalies is usage.anomalies else replace(usage, anomalies=anomalies)


@_handlers.on(RiskReserved)
def _reserved(usage: RiskUsage, event: RiskReserved) -> RiskUsage:
    existing = usage.reservations.get(event.reservation_id)
    if existing is not None:
        if event.event_id in existing.applied:
            return usage
        anomaly = Anomaly.of(event, f"reservation {event.reservation_id} was already made")
        return _put_reservation(
            usage,
            replace(
                existing,
                anomalies=(*existing.anomalies, anomaly),
                applied=existing.applied | {event.event_id},
            ),
        )
    return _put_reservation(
        usage,
        Reservation(
            reservation_id=event.reservation_id,
            suggestion_id=event.suggestion_id,
            amount=event.amount,
            limit_credit=event.limit_credit,
            reserved_at=event.occurred_at,
            applied=frozenset({event.event_id}),
        ),
    )


@_handlers.on(RiskReleased)
def _released(usage: RiskUsage, event: RiskReleased) -> RiskUsage:
    reservation = usage.reservations.get(event.reservation_id)
    if reservation is None:
        return _anomaly(usage, event, f"release of unknown reservation {event.reservation_id}")
    if event.event_id in reservation.applied:
        return usage
    applied = reservation.applied | {event.event_id}
    if reservation.status is not ReservationStatus.PENDING:
        anomaly = Anomaly.of(event, f"reservation {event.reservation_id} already ended")
        return _put_reservation(
            usage,
            replace(reservation, anomalies=(*reservation.anomalies, anomaly), applied=applied),
        )
    return _put_reservation(
        usage,
        replace(
            reservation,
            status=ReservationStatus.RELEASED,
            release_reason=event.reason,
            order_id=event.order_id,
            ended_at=event.occurred_at,
            applied=applied,
        ),
    )


@_handlers.on(RiskReservationFailed)
def _reservation_failed(usage: RiskUsage, event: RiskReservationFailed) -> RiskUsage:
    if event.event_id in usage.failures:
        return usage
    failure = ReservationFailure(
        event.suggestion_id, event.reason, event.message, event.occurred_at
    )
    reservations = {
        rid: replace(r, status=ReservationStatus.FAILED, ended_at=event.occurred_at)
        if r.suggestion_id == event.suggestion_id and r.status is ReservationStatus.PENDING
        else r
        for rid, r in usage.reservations.items()
    }
    return _totals(
        replace(
            usage,
            failures={**usage.failures, event.event_id: failure},
            reservations=reservations,
        )
    )


@_handlers.on(PositionOpened)
def _position_opened(usage: RiskUsage, event: PositionOpened) -> RiskUsage:
    if event.position_id in usage.positions:
        # A redelivery, or a second opening of the same position: the first one counts.
        return usage
    risk = PositionRisk(event.position_id, event.max_risk, event.occurred_at)
    return _totals(replace(usage, positions={**usage.positions, event.position_id: risk}))


@_handlers.on(PositionClosed)
def _position_closed(usage: RiskUsage, event: PositionClosed) -> RiskUsage:
    position = usage.positions.get(event.position_id)
    if position is None:
        return _anomaly(usage, event, f"close of position {event.position_id}, never opened")
    if not position.open:
        return usage
    closed = replace(position, open=False, closed_at=event.occurred_at)
    return _totals(replace(usage, positions={**usage.positions, event.position_id: closed}))


#: The risk usage projection, as risk and ``senex replay`` fold it.
RISK: Projection[RiskUsage] = Projection("risk", RiskUsage(), _handlers)


def apply(usage: RiskUsage, event: Event) -> RiskUsage:
    """The usage after ``event`` (unchanged for events it does not fold)."""
    return _handlers.apply(usage, event)
