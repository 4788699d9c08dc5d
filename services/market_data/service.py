"""The market-data service: lifecycle, /health, the scheduler and the command endpoints.

One `MarketStream` (one DXLink socket) on the market-data account's session carries
every quote and daily candle. Quotes land in an in-memory cache (latest wins) that the
queries read; QuoteReceived is published for the underlyings and leased symbols only,
throttled per symbol. A scheduler loop wakes every ``tick_s`` real seconds and compares
the injected clock's ``now()`` with each cadence's next due instant (bands every 30 s
while the market is open, balances every 30 s, chain every 15 min or at a new New York
date, IV rank every 5 min), so business time, not real time, drives the schedule.
Broker calls run as background jobs (one per kind at a time) so a slow broker never
delays staleness checks or command replies.

This module only drives the parts (built by `bootstrap`), each in its own module:

- `bootstrap`: what the service is built from, and the one place that builds the parts;
- `broker_link`: the vault, the market-data account and its DXLink stream;
- `feeds`: which symbols the stream carries (underlyings, window, leases, demand);
- `quotes`: the quote cache, what each quote sets off, WatchSymbols leases, GetQuotes;
- `publishing`: the outbox and QuoteReceived throttle, drained by one loop;
- `staleness`: MarketDataStale / MarketDataRecovered around the core's monitor;
- `chains`: chain structures, the warm default window, GetChainSnapshot;
- `conditions`: daily closes, bands, IV rank and rate, GetMarketCondition;
- `balances`: account streams and polls, BalanceUpdated;
- `jobs`, `metrics`: background broker work; the service's Prometheus series.

Market data keeps no projection of the business stream, so it is a plain
`ConnectedService` rather than a `FollowingService`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from libs.broker.settings import BrokerSettings
from libs.broker.streaming import MarketStream
from libs.contracts.commands import (
    ChainSnapshotReply,
    Command,
    GetChainSnapshot,
    GetMarketCondition,
    GetQuotes,
    MarketConditionReply,
    QuotesReply,
    Reply,
    WatchReply,
    WatchSymbols,
)
from libs.contracts.errors import InternalError
from libs.runtime import market_hours
from libs.runtime.connected import ConnectedService
from libs.runtime.log import get_logger
from libs.runtime.runner import HealthReport, ServiceContext
from libs.runtime.tasks import cancel_and_wait, run_periodically
from services.market_data import SERVICE
from services.market_data.bootstrap import MarketDataDependencies, MarketDataParts, assemble
from services.market_data.broker_link import NOT_CONNECTED
from services.market_data.chains import NOT_LOADED
from services.market_data.jobs import BackgroundJobs

__all__ = ["SERVICE", "MarketDataService"]


class MarketDataService(ConnectedService):
    """Quotes, chains, bands, staleness and balances for the rest of Senex."""

    def __init__(self, dependencies: MarketDataDependencies) -> None:
        """Built by `bootstrap.assemble` from ``dependencies`` at start."""
        super().__init__(SERVICE)
        self._deps = dependencies
        self._log = get_logger(SERVICE)
        # None until start; stop and /health also run after a start that failed midway.
        self._parts: MarketDataParts | None = None
        self._jobs = BackgroundJobs()
        self._loops: list[asyncio.Task[None]] = []
        self._next_credentials_attempt = 0.0

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, ctx: ServiceContext) -> None:
        """Connect bus and Postgres, answer commands, start the scheduler and publisher."""
        await super().start(ctx)
        p = self._parts = await assemble(self._deps, ctx, self.bus)
        # The underlyings are judged from start: no quote at all goes stale too.
        now = p.clock.now()
        for symbol in p.settings.underlyings:
            p.staleness.watch(symbol, now)
        handlers: dict[str, Callable[[Command], Awaitable[Reply]]] = {
            GetQuotes.VERB: self._typed(GetQuotes, self.get_quotes),
            WatchSymbols.VERB: self._typed(WatchSymbols, self.watch_symbols),
            GetChainSnapshot.VERB: self._typed(GetChainSnapshot, self.get_chain_snapshot),
            GetMarketCondition.VERB: self._typed(GetMarketCondition, self.get_market_condition),
        }
        await self.bus.serve(SERVICE, handlers)
        # The schedule must survive any single failed pass: logged, and the next one runs.
        scheduler = run_periodically(
            self._tick, p.settings.tick_s, what="scheduler pass", log=self._log
        )
        self._loops = [
            asyncio.create_task(scheduler, name="md-scheduler"),
            asyncio.create_task(p.publisher.run(), name="md-publisher"),
        ]

    async def stop(self) -> None:
        """Stop loops, jobs and streams, then the bus and Postgres."""
        p = self._parts
        tasks = [*self._loops, *self._jobs.tasks]
        if p is not None:
            tasks.extend(p.conditions.candle_tasks)
        await cancel_and_wait(tasks, log=self._log)  # a failed one is logged, not raised
        if p is not None:
            await p.quotes.subscriptions.close()
            p.conditions.close_candles()
            await p.balances.close()
            await p.broker.close_stream()
            # Whatever is still queued (a last stale/recovered transition) goes out first.
            await p.publisher.flush()
            await p.broker.close()
        await super().stop()

    async def health(self) -> HealthReport:
        """NATS and Postgres decide health; broker, stream and chain are reported only.

        A broker outage must not make the service (and ``senex up``) look down: the
        service keeps running and reconnects, and decisions see MARKET_DATA_STALE.
        """
        base = await super().health()
        checks = dict(base.checks)
        p = self._parts
        checks["broker"] = self.broker_status
        stream = self.stream
        if stream is not None:
            h = stream.health()
            checks["dxlink"] = h.state.value + (
                f" (last error {h.last_error_kind}: {h.last_error})" if h.last_error else ""
            )
        checks["chain"] = p.chains.status if p is not None else NOT_LOADED
        stale = p.staleness.stale_symbols() if p is not None else []
        checks["stale_symbols"] = ", ".join(stale) if stale else "none"
        return HealthReport(healthy=base.healthy, checks=checks)

    @property
    def broker_status(self) -> str:
        """The broker line of /health: the market-data account, or why there is none."""
        return self._parts.broker.status if self._parts is not None else NOT_CONNECTED

    @property
    def subscribed_symbols(self) -> frozenset[str]:
        """Every symbol this service currently has quotes subscribed for."""
        if self._parts is None:
            return frozenset()
        return self._parts.quotes.subscriptions.subscribed()

    @property
    def stream(self) -> MarketStream | None:
        """The market-data stream, once credentials were found."""
        return self._parts.broker.stream if self._parts is not None else None

    @property
    def broker_settings(self) -> BrokerSettings:
        """The broker settings in use (after start)."""
        return self._started().broker.broker_settings

    def _started(self) -> MarketDataParts:
        if self._parts is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._parts

    # --- commands -------------------------------------------------------------------

    @staticmethod
    def _typed(
        kind: type[Command], handler: Callable[..., Awaitable[Reply]]
    ) -> Callable[[Command], Awaitable[Reply]]:
        async def run(command: Command) -> Reply:
            if not isinstance(command, kind):
                raise InternalError(f"expected {kind.__name__}, got {type(command).__name__}")
            return await handler(command)

        return run

    async def get_quotes(self, command: GetQuotes) -> QuotesReply:
        """The latest cached quotes of the symbols asked for, and those without one."""
        return await self._started().quotes.get_quotes(command)

    async def watch_symbols(self, command: WatchSymbols) -> WatchReply:
        """Lease quote subscriptions (published as QuoteReceived) until the lease ends."""
        return await self._started().quotes.watch_symbols(command)

    async def get_chain_snapshot(self, command: GetChainSnapshot) -> ChainSnapshotReply:
        """The chain near the money from the cache; new strikes are subscribed and awaited."""
        return await self._started().chains.get_chain_snapshot(command)

    async def get_market_condition(self, command: GetMarketCondition) -> MarketConditionReply:
        """Price, bands over the 19 closes + the current mid, stress, IV rank, rate."""
        return await self._started().conditions.get_market_condition(command)

    # --- scheduler ------------------------------------------------------------------

    async def _tick(self) -> None:
        p = self._started()
        now = p.clock.now()
        today = market_hours.ny_date(now)
        market_open = market_hours.is_market_open(now)
        if p.broker.account is None:
            if time.monotonic() >= self._next_credentials_attempt:
                self._next_credentials_attempt = time.monotonic() + p.settings.credentials_retry_s
                self._jobs.start("connect", self._connect())
        else:
            await p.quotes.expire_leases(now)
            if p.chains.refresh_due(now, today):
                self._jobs.start("chains", p.chains.refresh())
            if p.chains.window_due(now):
                self._jobs.start("window", p.chains.update_window(today))
            if p.conditions.metrics_due(now):
                self._jobs.start("metrics", p.conditions.refresh_metrics())
        if p.balances.due(now):
            self._jobs.start("balances", p.balances.poll())
        p.staleness.check(now, today if market_open else None)
        if market_open and p.conditions.bands_due(now):
            p.conditions.recompute_bands(now, today)
        if p.broker.stream is not None:
            p.metrics.subscriptions.set(p.broker.stream.health().subscriptions)

    async def _connect(self) -> None:
        """Pick the market-data account, open its DXLink stream, subscribe the basics."""
        p = self._started()
        stream = await p.broker.connect()
        if stream is None:
            return
        p.conditions.follow_candles(stream)
        await p.quotes.subscriptions.resync()
