"""The login rate limiter's sliding windows."""

from __future__ import annotations

import pytest

from services.gateway.ratelimit import LoginLimiter, SlidingWindowLimiter


def test_allows_limit_attempts_per_window_then_refuses_until_the_oldest_leaves() -> None:
    limiter = SlidingWindowLimiter(limit=3, window_s=60)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after("k", t) == 0
        limiter.hit("k", t)
    assert limiter.retry_after("k", 30.0) == pytest.approx(30.0)
    assert limiter.retry_after("k", 59.9) == pytest.approx(0.1)
    # The window slides: at 60 the first attempt has left it.
    assert limiter.retry_after("k", 60.0) == 0
    limiter.hit("k", 60.0)
    assert limiter.retry_after("k", 61.0) == pytest.approx(9.0)


def test_keys_are_independent_and_reset_forgets() -> None:
    limiter = SlidingWindowLimiter(limit=1, window_s=10)
    limiter.hit("a", 0)
    assert limiter.retry_after("a", 1) > 0
    assert limiter.retry_after("b", 1) == 0
    limiter.reset("a")
    assert limiter.retry_after("a", 1) == 0


def test_the_number_of_keys_is_bounded() -> None:
    limiter = SlidingWindowLimiter(limit=1, window_s=100, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.hit(key, 0)
    assert limiter.retry_after("a", 1) == 0  # the oldest key was dropped
    assert limiter.retry_after("c", 1) > 0


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindowLimiter(limit=0, window_s=1)
    with pytest.raises(ValueError, match="window"):
        SlidingWindowLimiter(limit=1, window_s=0)


def login_limiter() -> LoginLimiter:
    return LoginLimiter(
        per_user=SlidingWindowLimiter(limit=2, window_s=60),
        per_address=SlidingWindowLimiter(limit=4, window_s=60),
    )


def test_failed_logins_count_per_username_in_any_case() -> None:
    limiter = login_limiter()
    limiter.record("Alice", "1.1.1.1", 0, succeeded=False)
    limiter.record("alice", "2.2.2.2", 1, succeeded=False)
    assert limiter.check("ALICE", "3.3.3.3", 2) > 0
    assert limiter.check("bob", "3.3.3.3", 2) == 0


def test_a_success_clears_the_username_but_not_the_address() -> None:
    limiter = login_limiter()
    limiter.record("alice", "1.1.1.1", 0, succeeded=False)
    limiter.record("alice", "1.1.1.1", 1, succeeded=True)
    limiter.record("alice", "1.1.1.1", 2, succeeded=False)
    assert limiter.check("alice", "9.9.9.9", 3) == 0
    # Every attempt counts against the address: one client trying many names.
    limiter.record("bob", "1.1.1.1", 3, succeeded=True)
    assert limiter.check("carol", "1.1.1.1", 4) > 0
