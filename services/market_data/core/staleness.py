"""Staleness of watched symbols: FRESH -> STALE after ``max_age`` without a quote, and back.

Only judged while the market is open: outside the session quotes legitimately stop. The
age of a symbol counts from the latest of its last quote, the moment it began to be
watched and the session's open, so a symbol is not stale at 09:30:01 just because its
last quote is from yesterday's close. A stale symbol recovers on its next quote, even
outside the session, and the recovery names when it went stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class WentStale:
    """``symbol`` had no quote for longer than the allowed age at ``at``."""

    symbol: str
    at: datetime
    last_quote_at: datetime | None
    age: timedelta


@dataclass(frozen=True)
class Recovered:
    """``symbol`` quoted again at ``at`` after being stale since ``stale_since``."""

    symbol: str
    at: datetime
    stale_since: datetime


@dataclass
class _Watch:
    since: datetime
    last_quote_at: datetime | None = None
    stale_since: datetime | None = None


class StalenessMonitor:
    """The FRESH/STALE state of each watched symbol."""

    def __init__(self, max_age: timedelta) -> None:
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        self.max_age = max_age
        self._watches: dict[str, _Watch] = {}

    def watch(self, symbol: str, since: datetime) -> None:
        """Start judging ``symbol`` (no-op when already watched)."""
        self._watches.setdefault(symbol, _Watch(since=since))

    def unwatch(self, symbol: str) -> None:
        """Stop judging ``symbol``."""
        self._watches.pop(symbol, None)

    def quote(self, symbol: str, at: datetime) -> Recovered | None:
        """Record a quote of ``symbol`` received at ``at``; a `Recovered` if it was stale."""
        watch = self._watches.get(symbol)
        if watch is None:
            return None
        watch.last_quote_at = at
        if watch.stale_since is None:
            return None
        stale_since, watch.stale_since = watch.stale_since, None
        return Recovered(symbol=symbol, at=at, stale_since=stale_since)

    def check(self, now: datetime, session_open: datetime | None) -> list[WentStale]:
        """Symbols that went stale by ``now``; ``session_open`` is None while closed."""
        if session_open is None:
            return []
        went: list[WentStale] = []
        for symbol, watch in self._watches.items():
            if watch.stale_since is not None:
                continue
            reference = max(watch.since, session_open)
            if watch.last_quote_at is not None:
                reference = max(reference, watch.last_quote_at)
            age = now - reference
            if age > self.max_age:
                watch.stale_since = now
                went.append(WentStale(symbol, now, watch.last_quote_at, age))
        return went

    def is_stale(self, symbol: str) -> bool:
        """Whether ``symbol`` is currently stale (unwatched symbols never are)."""
        watch = self._watches.get(symbol)
        return watch is not None and watch.stale_since is not None

    def stale_since(self, symbol: str) -> datetime | None:
        """When ``symbol`` went stale, or None."""
        watch = self._watches.get(symbol)
        return None if watch is None else watch.stale_since

    def stale_symbols(self) -> list[str]:
        """Every stale symbol, sorted."""
        return sorted(s for s, w in self._watches.items() if w.stale_since is not None)
