"""Leases on quote subscriptions: a symbol stays watched until its latest lease ends.

Leases are per symbol, not per caller: a renewal by anyone extends the symbol's end to
the latest requested. Times are business time (the injected clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


class LeaseBook:
    """The end of each symbol's lease."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def extend(self, symbols: Iterable[str], until: datetime) -> list[str]:
        """Lease ``symbols`` until at least ``until``; return those newly leased."""
        added: list[str] = []
        for symbol in symbols:
            current = self._until.get(symbol)
            if current is None:
                added.append(symbol)
            if current is None or until > current:
                self._until[symbol] = until
        return added

    def expire(self, now: datetime) -> list[str]:
        """Drop and return the symbols whose lease ended at or before ``now`` (sorted)."""
        ended = sorted(s for s, until in self._until.items() if until <= now)
        for symbol in ended:
            del self._until[symbol]
        return ended

    def until(self, symbol: str) -> datetime | None:
        """The end of ``symbol``'s lease, or None when it has none."""
        return self._until.get(symbol)

    def active(self) -> frozenset[str]:
        """Every leased symbol."""
        return frozenset(self._until)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._until

    def __len__(self) -> int:
        return len(self._until)
