"""Which symbols the market-data stream carries, and the subscriptions that carry them.

A symbol is subscribed for one of four reasons: it is an underlying (always), it is in
the strategy's default window (kept warm so snapshots answer at once, see `chains`), it
is leased by WatchSymbols (published as QuoteReceived), or a snapshot outside the window
asked for it recently (demand: cached, not published). The stream is told the union
whenever one of them changes, through two feeds (underlyings, options) so the option
set can churn without touching the underlyings' subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from libs.broker.models import StreamQuote
from libs.broker.streaming import MarketStream, Subscription
from libs.runtime.log import get_logger
from libs.runtime.tasks import cancel_and_wait
from services.market_data.broker_link import BrokerLink
from services.market_data.core.leases import LeaseBook


class QuoteFeed:
    """One consumer subscription on the shared stream, replaced when its symbols change.

    The new subscription is registered before the old one is closed (the stream keeps
    symbols both want subscribed), and whatever the old one still held is handed over,
    so no quote is lost in the swap.
    """

    def __init__(self, name: str, on_quote: Callable[[StreamQuote], None]) -> None:
        self.name = name
        self.symbols: frozenset[str] = frozenset()
        self._on_quote = on_quote
        self._sub: Subscription[StreamQuote] | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("market_data.feed", feed=name)

    async def set(self, stream: MarketStream, symbols: frozenset[str]) -> None:
        """Make the feed carry exactly ``symbols``."""
        if symbols == self.symbols and (self._sub is not None or not symbols):
            return
        old_sub, old_task = self._sub, self._task
        self._sub = stream.quotes(sorted(symbols)) if symbols else None
        self._task = (
            asyncio.create_task(self._pump(self._sub), name=f"md-feed-{self.name}")
            if self._sub is not None
            else None
        )
        self.symbols = symbols
        await self._retire(old_sub, old_task)

    async def _retire(
        self, sub: Subscription[StreamQuote] | None, task: asyncio.Task[None] | None
    ) -> None:
        if task is not None:
            await cancel_and_wait([task])
        if sub is not None:
            # Hand over what the old subscription still holds (get(0) never waits when
            # an item is queued), then let it go.
            with contextlib.suppress(TimeoutError, StopAsyncIteration):
                while True:
                    self._on_quote(await sub.get(0))
            sub.close()

    async def _pump(self, sub: Subscription[StreamQuote]) -> None:
        async for quote in sub:
            try:
                self._on_quote(quote)
            except Exception:  # one bad quote must not stop the feed
                self._log.exception("quote handling failed", symbol=quote.symbol)

    async def close(self) -> None:
        """Stop the feed."""
        sub, task, self._sub, self._task = self._sub, self._task, None, None
        self.symbols = frozenset()
        if task is not None:
            await cancel_and_wait([task])
        if sub is not None:
            sub.close()


class Subscriptions:
    """The reasons each symbol is wanted, and the two feeds that carry the union."""

    def __init__(
        self,
        underlyings: tuple[str, ...],
        broker: BrokerLink,
        on_quote: Callable[[StreamQuote], None],
    ) -> None:
        self._underlyings = frozenset(underlyings)
        self._broker = broker
        self._window: frozenset[str] = frozenset()
        #: WatchSymbols leases: these symbols are published as QuoteReceived.
        self.leases = LeaseBook()
        #: Snapshot strikes outside the window: cached for a while, not published.
        self.demand = LeaseBook()
        self._underlying_feed = QuoteFeed("underlyings", on_quote)
        self._option_feed = QuoteFeed("options", on_quote)
        # Two resyncs at once (a lease ending while a snapshot subscribes) would swap
        # the same feed twice concurrently.
        self._lock = asyncio.Lock()

    @property
    def window(self) -> frozenset[str]:
        """The default window's option symbols currently kept subscribed."""
        return self._window

    async def set_window(self, symbols: frozenset[str]) -> None:
        """Keep ``symbols`` (the default window) subscribed instead of the previous ones."""
        self._window = symbols
        await self.resync()

    async def resync(self) -> None:
        """Make the stream carry the underlyings and every wanted option symbol."""
        stream = self._broker.stream
        if stream is None:
            return
        async with self._lock:
            await self._underlying_feed.set(stream, self._underlyings)
            others = (
                self._window | self.leases.active() | self.demand.active()
            ) - self._underlyings
            await self._option_feed.set(stream, others)

    def subscribed(self) -> frozenset[str]:
        """Every symbol the feeds currently carry."""
        return self._underlying_feed.symbols | self._option_feed.symbols

    async def close(self) -> None:
        """Stop both feeds."""
        await self._underlying_feed.close()
        await self._option_feed.close()
