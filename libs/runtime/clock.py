"""Injected time: every business decision reads the clock it was handed.

`SystemClock` is the wall clock. `ManualClock` is moved by tests, replays and (in paper
mode) the simulator; it only moves forward and reports the timers that fired.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

#: The exchange's time zone: DTE, market hours and daily schedules are New York time.
NEW_YORK = ZoneInfo("America/New_York")


class ClockWentBackwards(ValueError):
    """A manual clock was asked to move to an earlier instant."""

    def __init__(self, current: datetime, requested: datetime) -> None:
        super().__init__(
            f"clock cannot go back from {current.isoformat()} to {requested.isoformat()}"
        )
        self.current = current
        self.requested = requested


class NaiveTimestamp(ValueError):
    """A timestamp without a time zone was given where an instant is required."""


class Clock(Protocol):
    """A source of the current instant (timezone-aware, UTC)."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        ...


def require_aware(value: datetime) -> datetime:
    """Return ``value`` in UTC, refusing naive datetimes."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveTimestamp(f"timestamp {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def new_york_time(instant: datetime) -> datetime:
    """``instant`` expressed in New York time."""
    return require_aware(instant).astimezone(NEW_YORK)


class SystemClock:
    """The machine's wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, order=True)
class FiredTimer:
    """A timer a `ManualClock` passed while advancing."""

    at: datetime
    name: str = field(compare=False)


class ManualClock:
    """A clock that moves only when told, and only forward.

    Timers registered with `call_at` are returned by `advance`/`set` in firing order
    once the clock reaches them, so a test can assert exactly what a schedule did.
    """

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start)
        self._timers: list[tuple[datetime, int, str]] = []
        self._seq = 0

    def now(self) -> datetime:
        return self._now

    def call_at(self, at: datetime, name: str) -> None:
        """Register a named timer firing at ``at``."""
        self._seq += 1
        heapq.heappush(self._timers, (require_aware(at), self._seq, name))

    def set(self, instant: datetime) -> list[FiredTimer]:
        """Move to ``instant`` (not earlier than now); return the timers that fired."""
        target = require_aware(instant)
        if target < self._now:
            raise ClockWentBackwards(self._now, target)
        self._now = target
        fired: list[FiredTimer] = []
        while self._timers and self._timers[0][0] <= target:
            at, _, name = heapq.heappop(self._timers)
            fired.append(FiredTimer(at=at, name=name))
        return fired

    def advance(self, delta: timedelta) -> list[FiredTimer]:
        """Move forward by ``delta`` (not negative); return the timers that fired."""
        return self.set(self._now + delta)
