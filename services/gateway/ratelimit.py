"""Login rate limiting: a sliding window of attempt times per key, in memory.

Pure apart from the dictionary it keeps: the caller passes the time. Each key (a
username, a client address) may make ``limit`` attempts within any ``window_s``
seconds; the next is refused until the oldest attempt leaves the window.

In memory by design: one gateway process holds the counts, and a restart forgives
everyone. With several gateway replicas each enforces its own window, so the effective
limit is ``limit x replicas``; a shared store (Postgres, NATS KV) would be needed then.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class SlidingWindowLimiter:
    """At most ``limit`` attempts per key in any window of ``window_s`` seconds."""

    limit: int
    window_s: float
    #: Keys with attempts in the window, bounded so a flood of distinct keys cannot grow
    #: memory without end (the oldest keys are dropped first).
    max_keys: int = 100_000
    _attempts: dict[str, deque[float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.window_s <= 0:
            raise ValueError("window_s must be positive")

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._attempts.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._attempts[key]
        return times

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        times = self._recent(key, now)
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window_s - now

    def hit(self, key: str, now: float) -> None:
        """Record one attempt of ``key`` at ``now``."""
        times = self._recent(key, now)
        if not times:
            if len(self._attempts) >= self.max_keys:
                self._attempts.pop(next(iter(self._attempts)))
            self._attempts[key] = times
        times.append(now)

    def reset(self, key: str) -> None:
        """Forget ``key``'s attempts (a successful login of that user)."""
        self._attempts.pop(key, None)


@dataclass
class LoginLimiter:
    """Two windows: per username and per client address; both must allow the attempt."""

    per_user: SlidingWindowLimiter
    per_address: SlidingWindowLimiter

    def check(self, username: str, address: str, now: float) -> float:
        """Seconds to wait before this attempt may be made (0: go ahead)."""
        return max(
            self.per_user.retry_after(username.casefold(), now),
            self.per_address.retry_after(address, now),
        )

    def record(self, username: str, address: str, now: float, *, succeeded: bool) -> None:
        """Count the attempt; a success clears the username's window (not the address's)."""
        self.per_address.hit(address, now)
        if succeeded:
            self.per_user.reset(username.casefold())
        else:
            self.per_user.hit(username.casefold(), now)
