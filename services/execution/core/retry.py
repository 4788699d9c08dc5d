"""The retry policy for broker requests that change orders (DOMAIN.md 5, pure).

At most 5 attempts, waiting 1, 2, 4 and 8 s between them. Timeouts, 429 and 5xx are
transient. After a timeout or a 5xx the broker may have acted on the request, so the
next attempt first looks the order up by its client tag (never two live orders for one
decision); a 429 was refused outright and is simply retried. An auth failure refreshes
the session and retries with the same backoff. An unreachable broker fails at once and
suspends trading (nothing is queued). Anything else (a rejection, bad input) is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from libs.contracts.errors import ErrorKind


class StepAction(Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"
    LOOKUP_THEN_RETRY = "lookup-then-retry"
    """The outcome is unknown: look the order up by client tag before sending again."""
    REFRESH_THEN_RETRY = "refresh-then-retry"
    SUSPEND = "suspend"
    """The broker is unreachable: fail at once and suspend trading."""
    GIVE_UP = "give-up"


@dataclass(frozen=True, slots=True)
class Step:
    """The decision after attempt ``attempt`` failed: an action and the wait before it."""

    action: StepAction
    delay_s: float = 0.0


#: Kinds after which the broker may have acted on the request.
OUTCOME_UNKNOWN = frozenset({ErrorKind.BROKER_TIMEOUT, ErrorKind.API_ERROR})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and waits; ``delays_s[i]`` is the wait after attempt ``i + 1``."""

    delays_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)

    @property
    def max_attempts(self) -> int:
        """One more than the waits between attempts (5)."""
        return len(self.delays_s) + 1

    def scaled(self, factor: float) -> RetryPolicy:
        """The same policy with every wait multiplied by ``factor`` (tests, benches)."""
        return RetryPolicy(tuple(d * factor for d in self.delays_s))

    def after_failure(self, attempt: int, kind: ErrorKind) -> Step:
        """The step after attempt ``attempt`` (1-based) failed with ``kind``."""
        if kind is ErrorKind.BROKER_UNAVAILABLE:
            return Step(StepAction.SUSPEND)
        if attempt >= self.max_attempts:
            return Step(StepAction.GIVE_UP)
        delay = self.delays_s[attempt - 1]
        if kind in OUTCOME_UNKNOWN:
            return Step(StepAction.LOOKUP_THEN_RETRY, delay)
        if kind is ErrorKind.RATE_LIMITED:
            return Step(StepAction.RETRY, delay)
        if kind is ErrorKind.AUTH_FAILED:
            return Step(StepAction.REFRESH_THEN_RETRY, delay)
        return Step(StepAction.GIVE_UP)
