"""The retry policy of DOMAIN.md 5: five attempts, waits 1, 2, 4, 8 s."""

from __future__ import annotations

import pytest

from libs.contracts.errors import ErrorKind
from services.execution.core import RetryPolicy, Step, StepAction

POLICY = RetryPolicy()


def test_at_most_five_attempts_waiting_one_two_four_eight_seconds() -> None:
    steps = [POLICY.after_failure(n, ErrorKind.RATE_LIMITED) for n in range(1, 6)]
    assert [s.delay_s for s in steps[:4]] == [1, 2, 4, 8]
    assert steps[4] == Step(StepAction.GIVE_UP)
    assert POLICY.max_attempts == 5


@pytest.mark.parametrize("kind", [ErrorKind.BROKER_TIMEOUT, ErrorKind.API_ERROR])
def test_after_a_timeout_or_5xx_the_order_is_looked_up_before_a_retry(kind: ErrorKind) -> None:
    assert POLICY.after_failure(1, kind) == Step(StepAction.LOOKUP_THEN_RETRY, 1.0)


def test_a_429_is_simply_retried() -> None:
    assert POLICY.after_failure(2, ErrorKind.RATE_LIMITED) == Step(StepAction.RETRY, 2.0)


def test_an_auth_failure_refreshes_then_retries_with_the_same_backoff() -> None:
    assert POLICY.after_failure(3, ErrorKind.AUTH_FAILED) == Step(
        StepAction.REFRESH_THEN_RETRY, 4.0
    )


def test_an_unreachable_broker_fails_at_once_and_suspends() -> None:
    assert POLICY.after_failure(1, ErrorKind.BROKER_UNAVAILABLE) == Step(StepAction.SUSPEND)


@pytest.mark.parametrize(
    "kind",
    [ErrorKind.ORDER_REJECTED, ErrorKind.INSUFFICIENT_BUYING_POWER, ErrorKind.VALIDATION_ERROR],
)
def test_a_refusal_is_final(kind: ErrorKind) -> None:
    assert POLICY.after_failure(1, kind) == Step(StepAction.GIVE_UP)


def test_tests_may_shorten_the_waits() -> None:
    assert POLICY.scaled(0.5).after_failure(4, ErrorKind.API_ERROR).delay_s == 4.0
