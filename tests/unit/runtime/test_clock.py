"""The injected clock: manual time only moves forward and reports the timers it passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.runtime.clock import (
    ClockWentBackwards,
    FiredTimer,
    ManualClock,
    NaiveTimestamp,
    SystemClock,
    new_york_time,
)

OPEN = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


def test_system_clock_is_timezone_aware_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


def test_manual_clock_starts_where_it_is_told() -> None:
    assert ManualClock(OPEN).now() == OPEN


def test_advance_moves_forward_by_the_delta() -> None:
    clock = ManualClock(OPEN)
    clock.advance(timedelta(minutes=15))
    assert clock.now() == OPEN + timedelta(minutes=15)


def test_going_backwards_is_refused_and_time_stays_put() -> None:
    clock = ManualClock(OPEN)
    with pytest.raises(ClockWentBackwards, match="cannot go back"):
        clock.set(OPEN - timedelta(seconds=1))
    assert clock.now() == OPEN


def test_negative_advance_is_refused() -> None:
    with pytest.raises(ClockWentBackwards):
        ManualClock(OPEN).advance(timedelta(seconds=-1))


def test_advance_returns_the_timers_passed_in_firing_order() -> None:
    clock = ManualClock(OPEN)
    clock.call_at(OPEN + timedelta(minutes=30), "band-recompute")
    clock.call_at(OPEN + timedelta(minutes=10), "quote-throttle")
    clock.call_at(OPEN + timedelta(hours=2), "later")
    fired = clock.advance(timedelta(minutes=30))
    assert fired == [
        FiredTimer(OPEN + timedelta(minutes=10), "quote-throttle"),
        FiredTimer(OPEN + timedelta(minutes=30), "band-recompute"),
    ]
    assert [t.name for t in fired] == ["quote-throttle", "band-recompute"]
    assert clock.advance(timedelta(hours=2))[0].name == "later"


def test_a_timer_fires_only_once() -> None:
    clock = ManualClock(OPEN)
    clock.call_at(OPEN + timedelta(seconds=1), "once")
    assert len(clock.advance(timedelta(seconds=1))) == 1
    assert clock.advance(timedelta(seconds=1)) == []


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(NaiveTimestamp):
        ManualClock(datetime(2026, 11, 24, 9, 30))  # noqa: DTZ001 - the point of the test


def test_new_york_time_follows_daylight_saving() -> None:
    # 15:45 New York is 20:45 UTC in November (EST) and 19:45 UTC in July (EDT).
    assert new_york_time(datetime(2026, 11, 24, 20, 45, tzinfo=UTC)).hour == 15
    assert new_york_time(datetime(2026, 7, 15, 19, 45, tzinfo=UTC)).hour == 15
