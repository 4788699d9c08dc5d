"""The account notification streams a service follows: one per account, pumped, reconnects.

Execution (order changes), the position monitor (position changes) and market data
(balances) each follow some accounts' streamers. `AccountFeeds` is that holding: it opens
an account's stream once, pumps what it yields into the service's handler (one bad
notification is logged and does not end the feed), tells the service when a stream
reconnected (notifications sent while the socket was down are lost, so the service then
re-reads the broker's REST state), and closes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from structlog.stdlib import BoundLogger

from libs.broker.adapter import BrokerAdapter
from libs.broker.streaming import AccountStream, Subscription
from libs.runtime.clock import Clock
from libs.runtime.tasks import cancel_and_wait

T = TypeVar("T")


@dataclass
class AccountFeed:
    """One account's streamer, the task consuming it, and the reconnects already handled."""

    stream: AccountStream
    task: asyncio.Task[None]
    reconnects_seen: int = 0

    def reconnected(self) -> bool:
        """True when the stream reconnected since the last call (then re-read REST)."""
        reconnects = self.stream.health().reconnects
        if reconnects > self.reconnects_seen:
            self.reconnects_seen = reconnects
            return True
        return False


class AccountFeeds(Generic[T]):
    """The streams a service follows, each pumping one kind of notification."""

    def __init__(
        self,
        adapter: Callable[[], BrokerAdapter],
        clock: Callable[[], Clock],
        *,
        subscribe: Callable[[AccountStream], Subscription[T]],
        handle: Callable[[str, T], Awaitable[None]],
        name: str,
        log: BoundLogger,
    ) -> None:
        """``subscribe`` picks what to follow on a new stream; ``handle(account, item)``
        takes each notification; ``name`` prefixes the pump tasks' names."""
        self._adapter = adapter
        self._clock = clock
        self._subscribe = subscribe
        self._handle = handle
        self._name = name
        self._log = log
        self._feeds: dict[str, AccountFeed] = {}
        self._lock = asyncio.Lock()

    def __contains__(self, account: object) -> bool:
        return account in self._feeds

    def accounts(self) -> frozenset[str]:
        """The accounts followed now."""
        return frozenset(self._feeds)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The pump tasks (for a service that waits on its background work)."""
        return [feed.task for feed in self._feeds.values()]

    async def ensure(self, account: str, *, wanted: Callable[[str], bool] = bool) -> None:
        """Follow ``account`` unless followed already or no longer ``wanted`` (checked
        under the lock, after the broker session is open too: a partition can change
        hands meanwhile). Raises the adapter's `SenexError` when no session opens."""
        async with self._lock:
            if account in self._feeds or not wanted(account):
                return
            session = await self._adapter().session_for(account)
            if not wanted(account):
                return
            stream = AccountStream(account, session, clock=self._clock())
            items = self._subscribe(stream)
            stream.start()
            task = asyncio.create_task(self._pump(account, items), name=f"{self._name}-{account}")
            self._feeds[account] = AccountFeed(stream, task)

    def reconnected(self, account: str) -> bool:
        """Whether ``account``'s stream reconnected since the last call."""
        feed = self._feeds.get(account)
        return feed is not None and feed.reconnected()

    def reconnected_accounts(self) -> list[str]:
        """The accounts whose stream reconnected since the last call."""
        return [account for account, feed in self._feeds.items() if feed.reconnected()]

    async def drop(self, account: str) -> None:
        """Stop following ``account`` (nothing when not followed)."""
        feed = self._feeds.pop(account, None)
        if feed is not None:
            await cancel_and_wait([feed.task])
            await feed.stream.aclose()

    async def close(self) -> None:
        """Stop following every account."""
        for account in sorted(self._feeds):
            await self.drop(account)

    async def _pump(self, account: str, items: Subscription[T]) -> None:
        async for item in items:
            try:
                await self._handle(account, item)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad notification must not end the feed; logged
                self._log.exception("account notification failed", account_id=account)
