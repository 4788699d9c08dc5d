"""Fixed cadences in business time: "every 30 s", driven by instants the caller reads."""

from __future__ import annotations

from datetime import datetime, timedelta


class Cadence:
    """Due at the first check, then every ``every`` of the instants it is shown."""

    def __init__(self, every: timedelta) -> None:
        if every <= timedelta(0):
            raise ValueError("every must be positive")
        self.every = every
        self._next: datetime | None = None

    def due(self, now: datetime) -> bool:
        """Whether a run is due at ``now``; if so, the next one is scheduled ``every`` later.

        A clock that jumps far ahead gives one run, not a catch-up burst.
        """
        if self._next is not None and now < self._next:
            return False
        self._next = now + self.every
        return True

    def reset(self) -> None:
        """Make the next check due (e.g. after a failed run to retry)."""
        self._next = None

    def retry_at(self, at: datetime) -> None:
        """Make the next run due at ``at`` instead (a sooner retry after a failure)."""
        self._next = at
