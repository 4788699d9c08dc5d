"""Push throttles and the per-connection send queue (pure: time is passed in).

`Throttle` lets at most one item per key out per window: the first item of a window
goes at once, later ones replace each other (latest wins) and the last of them goes at
the window's end, which starts the next window. A window that ends with nothing held
closes, so the next item goes at once again. The caller owns the timers: when `offer`
returns `Offer.SEND` it schedules `close(key)` at `deadline(key)`, and again whenever
`close` hands back an item.

`Outbox` is what a connection's writer drains: ordered messages, bounded (overflow means
the client reads too slowly and is disconnected), plus one slot per key for
latest-wins items (quotes), which a slow client can never make grow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Offer(Enum):
    """What to do with an offered item."""

    SEND = "send"
    """Send it now; a window opened: call `Throttle.close` at its deadline."""
    HELD = "held"
    """Held as the window's latest; it goes (unless replaced) when the window closes."""


@dataclass(slots=True)
class _Window(Generic[V]):
    ends_at: float
    held: tuple[V] | None = None
    """The latest item offered in the window (boxed: the item itself may be falsy)."""


class Throttle(Generic[K, V]):
    """At most one item per key per ``interval`` seconds, latest wins."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self._windows: dict[K, _Window[V]] = {}

    def offer(self, key: K, item: V, now: float) -> Offer:
        """Offer ``item`` for ``key`` at time ``now``."""
        window = self._windows.get(key)
        if window is None:
            self._windows[key] = _Window(ends_at=now + self.interval)
            return Offer.SEND
        window.held = (item,)
        return Offer.HELD

    def deadline(self, key: K) -> float | None:
        """When the open window of ``key`` ends; None without one."""
        window = self._windows.get(key)
        return window.ends_at if window is not None else None

    def close(self, key: K, now: float) -> tuple[V] | None:
        """End the window of ``key`` at ``now``.

        The held item (a 1-tuple: the item itself may be falsy) when there is one; a new
        window then starts at ``now``, so the gap between two sends is never below the
        interval. None when nothing was held: the window is gone.
        """
        window = self._windows.get(key)
        if window is None:
            return None
        held = window.held
        if held is None:
            del self._windows[key]
            return None
        window.held = None
        window.ends_at = now + self.interval
        return held

    def discard(self, key: K) -> None:
        """Forget ``key`` (unsubscribed): nothing held for it will be sent."""
        self._windows.pop(key, None)

    def __len__(self) -> int:
        return len(self._windows)


class Outbox(Generic[K]):
    """A connection's unsent messages: bounded ordered ones, then latest-wins ones."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._ordered: deque[str] = deque()
        self._latest: dict[K, str] = {}

    def put(self, text: str) -> bool:
        """Queue ``text``; False (nothing queued) when the bound is reached."""
        if len(self._ordered) >= self.limit:
            return False
        self._ordered.append(text)
        return True

    def put_latest(self, key: K, text: str) -> None:
        """Queue ``text`` as ``key``'s latest, replacing an unsent one."""
        # Re-inserted at the end: a key's slot keeps its place only while unsent.
        self._latest.pop(key, None)
        self._latest[key] = text

    def drop_latest(self, key: K) -> None:
        """Forget ``key``'s unsent item."""
        self._latest.pop(key, None)

    def take(self) -> list[str]:
        """Everything queued, ordered messages first; the outbox is then empty."""
        taken = list(self._ordered)
        taken.extend(self._latest.values())
        self._ordered.clear()
        self._latest.clear()
        return taken

    def __len__(self) -> int:
        return len(self._ordered) + len(self._latest)

    @property
    def ordered_count(self) -> int:
        """Ordered (non-latest-wins) messages waiting."""
        return len(self._ordered)
