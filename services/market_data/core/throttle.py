"""Per-symbol publication throttle: at most one item per symbol per interval, latest wins.

Time here is a transport timer (DOMAIN.md 8: push throttles use real time), given as a
monotonic float by the caller. The first item of a quiet symbol goes out at once; items
arriving inside the interval replace each other, and the last one is released when the
interval has passed (trailing edge), so the final value of a burst is always published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    last_sent: float
    pending: T | None = None


class Throttle(Generic[T]):
    """Latest-wins throttle keyed by symbol."""

    def __init__(self, interval_s: float) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must not be negative")
        self.interval_s = interval_s
        self._slots: dict[str, _Slot[T]] = {}
        self._pending: set[str] = set()

    def offer(self, symbol: str, item: T, now: float) -> T | None:
        """``item`` when it may be published now; otherwise None (it is held as pending)."""
        slot = self._slots.get(symbol)
        if slot is None:
            self._slots[symbol] = _Slot(last_sent=now)
            return item
        if now - slot.last_sent >= self.interval_s and slot.pending is None:
            slot.last_sent = now
            return item
        # Inside the interval (or behind a held item): the newer value replaces it.
        slot.pending = item
        self._pending.add(symbol)
        return None

    def due(self, now: float) -> list[T]:
        """The held items whose interval has passed; they count as published now."""
        released: list[T] = []
        for symbol in list(self._pending):
            slot = self._slots[symbol]
            if slot.pending is not None and now - slot.last_sent >= self.interval_s:
                released.append(slot.pending)
                slot.pending = None
                slot.last_sent = now
                self._pending.discard(symbol)
        return released

    def next_due(self) -> float | None:
        """The earliest instant a held item becomes due; None when nothing is held."""
        times = [self._slots[s].last_sent + self.interval_s for s in self._pending]
        return min(times) if times else None

    def forget(self, symbol: str) -> None:
        """Drop the symbol's state and any held item (it is no longer published)."""
        self._slots.pop(symbol, None)
        self._pending.discard(symbol)

    @property
    def held(self) -> int:
        """Symbols with an item waiting."""
        return len(self._pending)
