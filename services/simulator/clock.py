"""The simulated clock and the NYSE calendar (holidays and half days included)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd  # type: ignore[import-untyped]

NEW_YORK = ZoneInfo("America/New_York")


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS")


@lru_cache(maxsize=4096)
def session_bounds(day: date) -> tuple[datetime, datetime] | None:
    """Open and close (UTC) of the regular session on ``day``; None when closed all day."""
    cal = _calendar()
    label = pd.Timestamp(day)
    if not cal.is_session(label):
        return None
    opened = cal.session_open(label).to_pydatetime()
    closed = cal.session_close(label).to_pydatetime()
    return opened.astimezone(UTC), closed.astimezone(UTC)


def ny_date(t: datetime) -> date:
    """The calendar date in New York at instant ``t``."""
    return t.astimezone(NEW_YORK).date()


def is_market_open(t: datetime) -> bool:
    """Whether the regular session is trading at ``t``."""
    bounds = session_bounds(ny_date(t))
    return bounds is not None and bounds[0] <= t < bounds[1]


def is_session(day: date) -> bool:
    """Whether ``day`` has a regular session."""
    return session_bounds(day) is not None


def next_session_on_or_after(day: date) -> date:
    """The first session day at or after ``day``."""
    while not is_session(day):
        day += timedelta(days=1)
    return day


def previous_session_before(day: date) -> date:
    """The last session day strictly before ``day``."""
    day -= timedelta(days=1)
    while not is_session(day):
        day -= timedelta(days=1)
    return day


def trading_session_for(t: datetime) -> date:
    """The session an order arriving at ``t`` belongs to: today's until its close, else the next."""
    today = ny_date(t)
    bounds = session_bounds(today)
    if bounds is not None and t < bounds[1]:
        return today
    return next_session_on_or_after(today + timedelta(days=1))


def last_completed_session(t: datetime) -> date:
    """The latest session whose close is at or before ``t``."""
    today = ny_date(t)
    bounds = session_bounds(today)
    if bounds is not None and t >= bounds[1]:
        return today
    return previous_session_before(today)


START_EXAMPLE = "2025-06-03T11:00:00-04:00"


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant that names its UTC offset (``-04:00``, ``+00:00`` or ``Z``);
    ValueError, with an example, when it is malformed or naive."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not an ISO-8601 instant; give one with a UTC offset, "
            f"e.g. {START_EXAMPLE} or 2025-06-03T15:00:00Z"
        ) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            f"{text!r} has no UTC offset; give one, e.g. {START_EXAMPLE} or 2025-06-03T15:00:00Z"
        )
    return parsed


class SimClock:
    """Simulated time: a chosen start, advancing at ``speed`` times real time.

    Thread-safe because the CLI thread and the server thread both read it.
    """

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        real_time: Callable[[], float] = time.time,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._real_time = real_time
        self._lock = threading.Lock()
        self._anchor = start.astimezone(UTC)
        self._real_anchor = real_time()
        self._speed = speed

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def now(self) -> datetime:
        """The current simulated instant (UTC)."""
        with self._lock:
            elapsed = (self._real_time() - self._real_anchor) * self._speed
            return self._anchor + timedelta(seconds=elapsed)

    def set(self, at: datetime | None = None, speed: float | None = None) -> None:
        """Jump to ``at`` and/or change the speed, continuing from the current instant."""
        if at is not None and at.tzinfo is None:
            raise ValueError("time must be timezone-aware")
        if speed is not None and speed < 0:
            raise ValueError("speed must be >= 0")
        current = self.now()
        with self._lock:
            self._anchor = (at or current).astimezone(UTC)
            self._real_anchor = self._real_time()
            if speed is not None:
                self._speed = speed

    def state(self) -> tuple[datetime, float]:
        """(now, speed), for persisting across restarts."""
        return self.now(), self._speed
