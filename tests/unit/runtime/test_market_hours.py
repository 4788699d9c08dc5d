"""The shared NYSE calendar: sessions, holidays, half days, next open."""

from __future__ import annotations

from datetime import UTC, date, datetime

from libs.runtime.market_hours import (
    NEW_YORK,
    is_half_day,
    is_market_open,
    is_session,
    last_completed_session,
    next_open_after,
    session_bounds,
)


def _ny(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK)


def test_a_regular_day_trades_from_930_to_1600() -> None:
    assert not is_market_open(_ny(2025, 6, 3, 9, 29, 59))
    assert is_market_open(_ny(2025, 6, 3, 9, 30))
    assert is_market_open(_ny(2025, 6, 3, 15, 59, 59))
    assert not is_market_open(_ny(2025, 6, 3, 16, 0))
    assert not is_half_day(date(2025, 6, 3))


def test_holidays_and_weekends_have_no_session() -> None:
    assert not is_session(date(2025, 7, 4))  # Independence Day
    assert not is_session(date(2025, 12, 25))
    assert not is_session(date(2025, 6, 7))  # a Saturday
    assert session_bounds(date(2025, 7, 4)) is None


def test_half_days_close_at_1300() -> None:
    day = date(2025, 11, 28)  # the Friday after Thanksgiving
    assert is_half_day(day)
    bounds = session_bounds(day)
    assert bounds is not None
    assert bounds[1].astimezone(NEW_YORK).hour == 13
    assert not is_market_open(_ny(2025, 11, 28, 13, 0))


def test_next_open_skips_holidays_and_weekends() -> None:
    friday_evening = _ny(2025, 7, 3, 17, 0)  # Thursday before the 4th, then a weekend
    assert next_open_after(friday_evening) == _ny(2025, 7, 7, 9, 30).astimezone(UTC)


def test_last_completed_session_before_and_after_the_close() -> None:
    assert last_completed_session(_ny(2025, 6, 3, 15, 0)) == date(2025, 6, 2)
    assert last_completed_session(_ny(2025, 6, 3, 16, 0)) == date(2025, 6, 3)
    assert last_completed_session(_ny(2025, 6, 9, 8, 0)) == date(2025, 6, 6)
