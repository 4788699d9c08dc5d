"""Risk usage of an account, folded from reservations and positions (pure).

Used risk (DOMAIN.md 4) = pending reservations + max risk of open app-managed
positions. A reservation is pending from ``RiskReserved`` until ``RiskReleased`` (its
order ended; a filled order hands the risk over to its position) or until a
``RiskReservationFailed`` for the same suggestion says nothing is set aside after all.
A position counts from ``PositionOpened`` (which only a completely filled opening
order produces, so it is app-managed) until ``PositionClosed``. Buying power and the
tolerance are not folded here: they come with the broker's balance and the settings.

The totals are kept by deltas (`RunningSum`), so an event costs the same however many
reservations and positions the account already has.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

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
from libs.projections.framework import PMap, refused

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RunningSum:
    """A Decimal sum kept by adding and removing terms, equal to re-summing them.

    Adding and subtracting Decimals is exact, but a sum carries the smallest exponent
    of everything that went into it: 230.00 added then removed leaves ``0.00``, where
    ``sum(..., Decimal(0))`` over what is left gives ``0``. So the exponents of the
    current terms are counted and `total` is quantized to the smallest of them (and 0),
    which renders digit for digit like re-summing the current terms.
    """

    raw: Decimal = _ZERO
    count: int = 0
    exponents: tuple[tuple[int, int], ...] = ()
    """(exponent, number of current terms with it), few: money has one or two scales."""

    def add(self, term: Decimal) -> RunningSum:
        """This sum with ``term`` added."""
        return self._moved(term, 1)

    def remove(self, term: Decimal) -> RunningSum:
        """This sum without ``term`` (which was added)."""
        return self._moved(term, -1)

    def _moved(self, term: Decimal, sign: int) -> RunningSum:
        exponent = int(term.as_tuple().exponent)
        counts = dict(self.exponents)
        counts[exponent] = counts.get(exponent, 0) + sign
        return RunningSum(
            self.raw + term if sign > 0 else self.raw - term,
            self.count + sign,
            tuple(sorted((e, n) for e, n in counts.items() if n)),
        )

    @property
    def total(self) -> Decimal:
        """The sum of the current terms, as ``sum(terms, Decimal(0))`` writes it."""
        if not self.count:
            return _ZERO
        smallest = min(0, self.exponents[0][0])
        return self.raw.quantize(Decimal(1).scaleb(smallest))


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

    The totals are kept with the state (updated on every change) so readers need no
    arithmetic and the rendered state shows them.
    """

    reservations: PMap[UUID, Reservation] = field(default_factory=PMap)
    failures: PMap[UUID, ReservationFailure] = field(default_factory=PMap)
    """By the id of the RiskReservationFailed event."""
    positions: PMap[UUID, PositionRisk] = field(default_factory=PMap)
    reserved_risk: Decimal = _ZERO
    """Sum of pending reservations."""
    open_positions_max_risk: Decimal = _ZERO
    """Sum of max risk of open positions."""
    used_risk: Decimal = _ZERO
    """reserved_risk + open_positions_max_risk."""
    open_positions: int = 0
    anomalies: tuple[Anomaly, ...] = ()
    by_suggestion: Annotated[PMap[UUID, tuple[UUID, ...]], Field(exclude=True)] = field(
        default_factory=PMap, repr=False
    )
    """Reservation ids by suggestion, so a RiskReservationFailed finds its own."""
    reserved_sum: Annotated[RunningSum, Field(exclude=True)] = field(
        default=RunningSum(), repr=False
    )
    """The pending reservations' amounts."""
    at_risk_sum: Annotated[RunningSum, Field(exclude=True)] = field(
        default=RunningSum(), repr=False
    )
    """The open positions' max risk."""


_handlers: Handlers[RiskUsage] = Handlers()


def _totals(usage: RiskUsage, reserved: RunningSum, at_risk: RunningSum) -> RiskUsage:
    """``usage`` with its running sums and the totals they give."""
    reserved_risk, at_risk_total = reserved.total, at_risk.total
    return replace(
        usage,
        reserved_sum=reserved,
        at_risk_sum=at_risk,
        reserved_risk=reserved_risk,
        open_positions_max_risk=at_risk_total,
        used_risk=reserved_risk + at_risk_total,
        open_positions=at_risk.count,
    )


def _put_reservation(usage: RiskUsage, reservation: Reservation) -> RiskUsage:
    """``usage`` with ``reservation`` stored and the reserved total moved by the change."""
    old = usage.reservations.get(reservation.reservation_id)
    reserved = usage.reserved_sum
    if old is not None and old.status is ReservationStatus.PENDING:
        reserved = reserved.remove(old.amount)
    if reservation.status is ReservationStatus.PENDING:
        reserved = reserved.add(reservation.amount)
    changed = replace(
        usage, reservations=usage.reservations.set(reservation.reservation_id, reservation)
    )
    if old is None:
        ids = usage.by_suggestion.get(reservation.suggestion_id, ())
        changed = replace(
            changed,
            by_suggestion=usage.by_suggestion.set(
                reservation.suggestion_id, (*ids, reservation.reservation_id)
            ),
        )
    if reserved is usage.reserved_sum:
        return changed
    return _totals(changed, reserved, usage.at_risk_sum)


def _anomaly(usage: RiskUsage, event: Event, message: str) -> RiskUsage:
    anomalies = with_anomaly(usage.anomalies, event, message)
    return usage if anomalies is usage.anomalies else replace(usage, anomalies=anomalies)


@_handlers.on(RiskReserved)
def _reserved(usage: RiskUsage, event: RiskReserved) -> RiskUsage:
    existing = usage.reservations.get(event.reservation_id)
    if existing is not None:
        if event.event_id in existing.applied:
            return usage
        message = f"reservation {event.reservation_id} was already made"
        return _put_reservation(usage, refused(existing, event, message))
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
        message = f"reservation {event.reservation_id} already ended"
        return _put_reservation(usage, refused(reservation, event, message))
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
    usage = replace(usage, failures=usage.failures.set(event.event_id, failure))
    for reservation_id in usage.by_suggestion.get(event.suggestion_id, ()):
        reservation = usage.reservations[reservation_id]
        if reservation.status is ReservationStatus.PENDING:
            failed = replace(
                reservation, status=ReservationStatus.FAILED, ended_at=event.occurred_at
            )
            usage = _put_reservation(usage, failed)
    return usage


@_handlers.on(PositionOpened)
def _position_opened(usage: RiskUsage, event: PositionOpened) -> RiskUsage:
    if event.position_id in usage.positions:
        # A redelivery, or a second opening of the same position: the first one counts.
        return usage
    risk = PositionRisk(event.position_id, event.max_risk, event.occurred_at)
    positions = usage.positions.set(event.position_id, risk)
    return _totals(
        replace(usage, positions=positions),
        usage.reserved_sum,
        usage.at_risk_sum.add(risk.max_risk),
    )


@_handlers.on(PositionClosed)
def _position_closed(usage: RiskUsage, event: PositionClosed) -> RiskUsage:
    position = usage.positions.get(event.position_id)
    if position is None:
        return _anomaly(usage, event, f"close of position {event.position_id}, never opened")
    if not position.open:
        return usage
    closed = replace(position, open=False, closed_at=event.occurred_at)
    positions = usage.positions.set(event.position_id, closed)
    at_risk = usage.at_risk_sum.remove(position.max_risk)
    return _totals(replace(usage, positions=positions), usage.reserved_sum, at_risk)


#: The risk usage projection, as risk and ``senex replay`` fold it.
RISK: Projection[RiskUsage] = Projection("risk", RiskUsage(), _handlers)


def apply(usage: RiskUsage, event: Event) -> RiskUsage:
    """The usage after ``event`` (unchanged for events it does not fold)."""
    return _handlers.apply(usage, event)
