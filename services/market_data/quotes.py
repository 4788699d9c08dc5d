"""The latest quote of every subscribed symbol, and what each arriving quote sets off.

Every quote from the stream lands in an in-memory cache (latest wins) that the queries
read; it also clears the symbol's staleness, wakes snapshot callers waiting for it, and,
for the underlyings and WatchSymbols-leased symbols only, goes out as a throttled
QuoteReceived. Window and snapshot strikes are cached but not published: nobody
asked to be pushed their every tick. Leases are renewed and ended here because each end
touches all three (publication, staleness, subscriptions).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from pydantic import ValidationError

from libs.broker.models import StreamQuote
from libs.contracts.commands import GetQuotes, QuotesReply, WatchReply, WatchSymbols
from libs.contracts.errors import MarketDataStaleError
from libs.contracts.market import Quote
from libs.runtime.clock import Clock
from libs.runtime.log import get_logger
from services.market_data import SERVICE
from services.market_data.broker_link import BrokerLink
from services.market_data.feeds import Subscriptions
from services.market_data.publishing import Publisher
from services.market_data.staleness import Staleness


@dataclass(frozen=True, slots=True)
class CachedQuote:
    """The latest quote of a symbol and when it arrived (business time)."""

    quote: Quote
    bid_size: int | None
    ask_size: int | None
    received_at: datetime


class Quotes:
    """The quote cache, its waiters, and the leases that decide what is published."""

    def __init__(
        self,
        underlyings: tuple[str, ...],
        *,
        clock: Clock,
        broker: BrokerLink,
        staleness: Staleness,
        publisher: Publisher,
        received: Counter,
    ) -> None:
        self._underlyings = underlyings
        self._clock = clock
        self._broker = broker
        self._staleness = staleness
        self._publisher = publisher
        self._received = received
        self._log = get_logger(SERVICE)
        self._cache: dict[str, CachedQuote] = {}
        # Snapshot callers waiting for the first quote of some symbols.
        self._waiters: list[tuple[set[str], asyncio.Event]] = []
        # The underlyings and the leased symbols: kept as a set because every quote
        # asks whether it is published; changes only when a lease starts or ends.
        self._published = frozenset(underlyings)
        #: What the stream carries; its feeds call `on_quote`.
        self.subscriptions = Subscriptions(underlyings, broker, self.on_quote)

    # --- arriving quotes --------------------------------------------------------------

    def on_quote(self, stream_quote: StreamQuote) -> None:
        """Cache a quote from the stream and act on it (recovery, waiters, publication)."""
        now = self._clock.now()
        symbol = stream_quote.symbol
        try:
            quote = stream_quote.to_contract()
        except ValidationError as exc:
            self._log.warning("unusable quote skipped", symbol=symbol, error=str(exc))
            return
        self._cache[symbol] = CachedQuote(quote, stream_quote.bid_size, stream_quote.ask_size, now)
        self._received.inc()
        self._staleness.quote(symbol, now)
        if self._waiters:
            for wanted, event in self._waiters:
                wanted.discard(symbol)
                if not wanted:
                    event.set()
        if symbol in self._published:
            self._publisher.offer_quote(stream_quote, now)

    async def await_quotes(self, symbols: Iterable[str], wait_seconds: float) -> None:
        """Wait up to ``wait_seconds`` until each of ``symbols`` has a cached quote."""
        wanted = {s for s in symbols if s not in self._cache}
        if not wanted or wait_seconds <= 0:
            return
        arrived = asyncio.Event()
        entry = (wanted, arrived)
        self._waiters.append(entry)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), wait_seconds)
        finally:
            self._waiters.remove(entry)

    # --- reading the cache ------------------------------------------------------------

    def latest(self, symbol: str) -> Quote | None:
        """The latest quote of ``symbol``, fresh or not; None before the first."""
        cached = self._cache.get(symbol)
        return cached.quote if cached is not None else None

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._cache

    def fresh_underlying(self, underlying: str) -> Quote:
        """The underlying's quote, or MARKET_DATA_STALE (none yet, or stale)."""
        cached = self._cache.get(underlying)
        if cached is None:
            raise MarketDataStaleError(
                f"no quote for {underlying} yet ({self._broker.describe_stream()})",
                details={"symbol": underlying},
            )
        if self._staleness.is_stale(underlying):
            since = self._staleness.stale_since(underlying)
            raise MarketDataStaleError(
                f"quotes for {underlying} are stale since "
                f"{since.isoformat() if since else '?'}: last quote received "
                f"{cached.received_at.isoformat()} ({self._broker.describe_stream()})",
                details={"symbol": underlying},
            )
        return cached.quote

    async def get_quotes(self, command: GetQuotes) -> QuotesReply:
        """The latest cached quotes of the symbols asked for, and those without one."""
        quotes: list[Quote] = []
        missing: list[str] = []
        for symbol in command.symbols:
            cached = self._cache.get(symbol)
            if cached is None:
                missing.append(symbol)
            else:
                quotes.append(cached.quote)
        return QuotesReply(quotes=tuple(quotes), missing=tuple(missing))

    # --- leases -----------------------------------------------------------------------

    async def watch_symbols(self, command: WatchSymbols) -> WatchReply:
        """Lease quote subscriptions (published as QuoteReceived) until the lease ends."""
        now = self._clock.now()
        until = now + timedelta(seconds=command.lease_seconds)
        symbols = list(dict.fromkeys(command.symbols))
        leases = self.subscriptions.leases
        added = leases.extend(symbols, until)
        for symbol in added:
            self._staleness.watch(symbol, now)
        if added:
            self._published = frozenset(self._underlyings) | leases.active()
            await self.subscriptions.resync()
        return WatchReply(symbols=tuple(symbols), watched_until=until)

    async def expire_leases(self, now: datetime) -> None:
        """End the leases and snapshot demands due by ``now``; unsubscribe what they held."""
        leases = self.subscriptions.leases
        ended = leases.expire(now)
        for symbol in ended:
            if symbol not in self._underlyings:
                self._staleness.unwatch(symbol)
                self._publisher.forget(symbol)
        demand_ended = self.subscriptions.demand.expire(now)
        if ended:
            self._published = frozenset(self._underlyings) | leases.active()
            self._log.info("leases ended", symbols=len(ended))
        if ended or demand_ended:
            await self.subscriptions.resync()
