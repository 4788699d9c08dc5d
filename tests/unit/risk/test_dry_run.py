"""The dry run's backoff between attempts."""

from __future__ import annotations

from services.risk.dry_run import retry_delay


def test_the_backoff_is_taken_in_order_and_its_last_value_repeats() -> None:
    assert [retry_delay((0.5, 1.0), attempt) for attempt in (1, 2, 3, 4)] == [0.5, 1.0, 1.0, 1.0]


def test_no_backoff_retries_at_once() -> None:
    assert retry_delay((), 1) == 0.0
    assert retry_delay((), 3) == 0.0
