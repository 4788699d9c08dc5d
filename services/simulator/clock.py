"""The simulated clock; the NYSE calendar comes from `libs.runtime.market_hours`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from libs.runtime.market_hours import (
    NEW_YORK,
    is_market_open,
    is_session,
    last_completed_session,
    next_session_on_or_after,
    ny_date,
    previous_session_before,
    session_bounds,
    trading_session_for,
)

__all__ = [
    "NEW_YORK",
    "SimClock",
    "is_market_open",
    "is_session",
    "last_completed_session",
    "next_session_on_or_after",
    "ny_date",
    "parse_instant",
    "previous_session_before",
    "session_bounds",
    "trading_session_for",
]

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
