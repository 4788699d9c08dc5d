"""Regular market hours of the NYSE (XNYS), holidays and half days from exchange_calendars.

Every service that asks "is the market open?" (bands cadence, staleness, execution,
the daily runs) uses this module, so they agree with each other and with the simulator.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd  # type: ignore[import-untyped]

from libs.runtime.clock import NEW_YORK

__all__ = ["NEW_YORK"]
#: A regular session's length; a shorter one is a half day (early close).
_FULL_SESSION = timedelta(hours=6, minutes=30)


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


def is_half_day(day: date) -> bool:
    """Whether ``day``'s session closes early (13:00 New York)."""
    bounds = session_bounds(day)
    return bounds is not None and bounds[1] - bounds[0] < _FULL_SESSION


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


def next_open_after(t: datetime) -> datetime:
    """The first session open strictly after ``t`` (UTC)."""
    day = ny_date(t)
    while True:
        bounds = session_bounds(day)
        if bounds is not None and bounds[0] > t:
            return bounds[0]
        day = next_session_on_or_after(day + timedelta(days=1))


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
