"""The market-data service's shell: DXLink, the broker, the bus and the clock wired to the core.

One `MarketStream` (one DXLink socket) on the market-data account's session carries
every quote and daily candle. Quotes land in an in-memory cache (latest wins) that the
queries read; QuoteReceived is published for the underlyings and leased symbols only,
throttled per symbol. A scheduler loop wakes every ``tick_s`` real seconds and compares
the injected clock's ``now()`` with each cadence's next due instant (bands every 30 s
while the market is open, balances every 30 s, chain every 15 min or at a new New York
date, IV rank every 5 min), so business time, not real time, drives the schedule.
Broker calls run as background jobs (one per kind at a time) so a slow broker never
delays staleness checks or command replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from libs.broker.adapter import BrokerAdapter
from libs.broker.models import (
    Balances,
    BrokerCredentials,
    DailyCandle,
    OptionChain,
    RateSource,
    RiskFreeRate,
    StreamQuote,
)
from libs.broker.settings import BrokerSettings
from libs.broker.streaming import AccountStream, MarketStream, Subscription
from libs.broker.vault import CredentialsVault
from libs.contracts.account import BalanceUpdated
from libs.contracts.account import TradingMode as LinkMode
from libs.contracts.commands import (
    ChainSnapshotExpiration,
    ChainSnapshotReply,
    ChainStrikeQuotes,
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
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import (
    BrokerUnavailable,
    InternalError,
    MarketDataStaleError,
    NotFound,
    SenexError,
)
from libs.contracts.market import (
    MarketConditionChanged,
    MarketDataRecovered,
    MarketDataStale,
    Quote,
    QuoteReceived,
)
from libs.runtime import market_hours
from libs.runtime.clock import Clock
from libs.runtime.connected import ConnectedService
from libs.runtime.log import get_logger
from libs.runtime.runner import HealthReport, ServiceContext
from libs.runtime.settings import TradingMode
from services.market_data.core.balances import BalanceChanges, BalanceFigures
from services.market_data.core.cadence import Cadence
from services.market_data.core.chain import select_window, window_symbols
from services.market_data.core.condition import (
    CLOSES_NEEDED,
    Condition,
    DailyCloses,
    evaluate,
    is_change,
)
from services.market_data.core.leases import LeaseBook
from services.market_data.core.staleness import StalenessMonitor
from services.market_data.core.throttle import Throttle
from services.market_data.settings import MarketDataSettings

SERVICE = "market_data"
#: Business seconds before a failed chain fetch is tried again.
CHAIN_RETRY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class _Cached:
    """The latest quote of a symbol and when it arrived (business time)."""

    quote: Quote
    bid_size: int | None
    ask_size: int | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class _Tick:
    """A quote held by the publication throttle."""

    quote: StreamQuote
    received_at: datetime


class _Credentials:
    """The adapter's credentials: a few held in memory (paper default), else the vault."""

    def __init__(self, vault: CredentialsVault) -> None:
        self._vault = vault
        self.static: dict[str, BrokerCredentials] = {}

    async def credentials_for(self, account_number: str) -> BrokerCredentials:
        held = self.static.get(account_number)
        if held is not None:
            return held
        return await self._vault.credentials_for(account_number)


class _QuoteFeed:
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
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if sub is not None:
            sub.close()


class MarketDataService(ConnectedService):
    """Quotes, chains, bands, staleness and balances for the rest of Senex."""

    def __init__(
        self,
        settings: MarketDataSettings | None = None,
        broker_settings: BrokerSettings | None = None,
    ) -> None:
        """Settings default to the environment (``SENEX_MARKET_DATA_*``, ``SENEX_BROKER_*``)."""
        super().__init__(SERVICE)
        self._md_settings = settings
        self._broker_settings_given = broker_settings
        self._log = get_logger(SERVICE)
        self._cache: dict[str, _Cached] = {}
        self._closes: dict[str, DailyCloses] = {}
        self._conditions: dict[str, Condition] = {}
        self._chains: dict[str, OptionChain] = {}
        self._iv_rank: dict[str, Decimal | None] = {}
        self._rate: RiskFreeRate | None = None
        self._leases = LeaseBook()
        self._demand = LeaseBook()
        self._window: frozenset[str] = frozenset()
        self._published: frozenset[str] = frozenset()
        self._waiters: list[tuple[set[str], asyncio.Event]] = []
        self._outbox: list[Event] = []
        self._wake = asyncio.Event()
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._candle_tasks: list[asyncio.Task[None]] = []
        self._candle_subs: list[Subscription[DailyCandle]] = []
        self._account_streams: dict[str, tuple[AccountStream, asyncio.Task[None]]] = {}
        self._balance_changes = BalanceChanges()
        self._feeds_lock = asyncio.Lock()
        self._stream: MarketStream | None = None
        self._adapter: BrokerAdapter | None = None
        self._credentials: _Credentials | None = None
        self._vault: CredentialsVault | None = None
        self._account: str | None = None
        self._broker_status = "not connected yet"
        self._chain_status = "not loaded yet"
        self._next_credentials_attempt = 0.0
        self._chain_day: date | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, ctx: ServiceContext) -> None:
        """Connect bus and Postgres, answer commands, start the scheduler and publisher."""
        await super().start(ctx)
        self._settings = self._md_settings or MarketDataSettings()
        self._broker_settings = self._broker_settings_given or BrokerSettings()
        self._clock: Clock = ctx.clock
        s = self._settings
        self._throttle: Throttle[_Tick] = Throttle(s.quote_publish_interval_s)
        self._staleness = StalenessMonitor(timedelta(seconds=s.stale_after_s))
        self._bands_cadence = Cadence(timedelta(seconds=s.bands_interval_s))
        self._balances_cadence = Cadence(timedelta(seconds=s.balances_interval_s))
        self._chain_cadence = Cadence(timedelta(seconds=s.chain_refresh_s))
        self._metrics_cadence = Cadence(timedelta(seconds=s.metrics_refresh_s))
        self._window_cadence = Cadence(timedelta(seconds=s.bands_interval_s))
        self._underlyings = tuple(s.underlyings)
        self._published = frozenset(self._underlyings)
        self._closes = {u: DailyCloses() for u in self._underlyings}
        self._underlying_feed = _QuoteFeed("underlyings", self._on_quote)
        self._option_feed = _QuoteFeed("options", self._on_quote)
        now = self._clock.now()
        for symbol in self._underlyings:
            self._staleness.watch(symbol, now)
        self._init_metrics(ctx)
        self._vault = await CredentialsVault.open(ctx.settings.database_url, self._broker_settings)
        self._credentials = _Credentials(self._vault)
        self._adapter = BrokerAdapter(self._broker_settings, self._credentials)
        handlers: dict[str, Callable[[Command], Awaitable[Reply]]] = {
            GetQuotes.VERB: self._typed(GetQuotes, self.get_quotes),
            WatchSymbols.VERB: self._typed(WatchSymbols, self.watch_symbols),
            GetChainSnapshot.VERB: self._typed(GetChainSnapshot, self.get_chain_snapshot),
            GetMarketCondition.VERB: self._typed(GetMarketCondition, self.get_market_condition),
        }
        await self.bus.serve(SERVICE, handlers)
        self._loops = [
            asyncio.create_task(self._scheduler(), name="md-scheduler"),
            asyncio.create_task(self._publisher(), name="md-publisher"),
        ]

    async def stop(self) -> None:
        """Stop loops, jobs and streams, then the bus and Postgres."""
        for task in [*self._loops, *self._jobs.values(), *self._candle_tasks]:
            task.cancel()
        for task in [*self._loops, *self._jobs.values(), *self._candle_tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if hasattr(self, "_underlying_feed"):
            await self._underlying_feed.close()
            await self._option_feed.close()
        for sub in self._candle_subs:
            sub.close()
        for stream, task in self._account_streams.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await stream.aclose()
        self._account_streams.clear()
        if self._stream is not None:
            await self._stream.aclose()
        # Whatever is still queued (a last stale/recovered transition) goes out first.
        await self._flush_outbox()
        if self._adapter is not None:
            await self._adapter.aclose()
        await super().stop()

    async def health(self) -> HealthReport:
        """NATS and Postgres decide health; broker, stream and chain are reported only.

        A broker outage must not make the service (and ``senex up``) look down: the
        service keeps running and reconnects, and decisions see MARKET_DATA_STALE.
        """
        base = await super().health()
        checks = dict(base.checks)
        checks["broker"] = self._broker_status
        if self._stream is not None:
            h = self._stream.health()
            checks["dxlink"] = h.state.value + (
                f" (last error {h.last_error_kind}: {h.last_error})" if h.last_error else ""
            )
        checks["chain"] = self._chain_status
        stale = self._staleness.stale_symbols() if hasattr(self, "_staleness") else []
        checks["stale_symbols"] = ", ".join(stale) if stale else "none"
        return HealthReport(healthy=base.healthy, checks=checks)

    @property
    def broker_status(self) -> str:
        """The broker line of /health: the market-data account, or why there is none."""
        return self._broker_status

    @property
    def subscribed_symbols(self) -> frozenset[str]:
        """Every symbol this service currently has quotes subscribed for."""
        if not hasattr(self, "_underlying_feed"):
            return frozenset()
        return self._subscribed()

    @property
    def stream(self) -> MarketStream | None:
        """The market-data stream, once credentials were found."""
        return self._stream

    @property
    def broker_settings(self) -> BrokerSettings:
        """The broker settings in use (after start)."""
        return self._broker_settings

    def _init_metrics(self, ctx: ServiceContext) -> None:
        registry = ctx.metrics.registry
        self._m_received = Counter(
            "senex_quotes_received_total",
            "Quotes received from the market-data stream.",
            ["service"],
            registry=registry,
        ).labels(SERVICE)
        self._m_published = Counter(
            "senex_quotes_published_total",
            "QuoteReceived events published (after the per-symbol throttle).",
            ["service"],
            registry=registry,
        ).labels(SERVICE)
        self._m_stale = Gauge(
            "senex_market_data_stale_symbols",
            "Watched symbols currently without a fresh quote.",
            ["service"],
            registry=registry,
        ).labels(SERVICE)
        self._m_watched = Gauge(
            "senex_market_data_subscriptions",
            "Symbols subscribed on the market-data stream.",
            ["service"],
            registry=registry,
        ).labels(SERVICE)

    @staticmethod
    def _typed(
        kind: type[Command], handler: Callable[..., Awaitable[Reply]]
    ) -> Callable[[Command], Awaitable[Reply]]:
        async def run(command: Command) -> Reply:
            if not isinstance(command, kind):
                raise InternalError(f"expected {kind.__name__}, got {type(command).__name__}")
            return await handler(command)

        return run

    # --- quotes ---------------------------------------------------------------------

    def _on_quote(self, stream_quote: StreamQuote) -> None:
        now = self._clock.now()
        symbol = stream_quote.symbol
        try:
            quote = stream_quote.to_contract()
        except ValidationError as exc:
            self._log.warning("unusable quote skipped", symbol=symbol, error=str(exc))
            return
        self._cache[symbol] = _Cached(quote, stream_quote.bid_size, stream_quote.ask_size, now)
        self._m_received.inc()
        recovered = self._staleness.quote(symbol, now)
        if recovered is not None:
            self._emit(
                MarketDataRecovered(
                    occurred_at=now,
                    producer=SERVICE,
                    correlation_id=new_event_id(),
                    symbol=symbol,
                    stale_since=recovered.stale_since,
                )
            )
            self._log.info("quotes recovered", symbol=symbol, stale_since=recovered.stale_since)
        if self._waiters:
            for wanted, event in self._waiters:
                wanted.discard(symbol)
                if not wanted:
                    event.set()
        if symbol in self._published:
            tick = self._throttle.offer(symbol, _Tick(stream_quote, now), time.monotonic())
            if tick is not None:
                self._outbox.append(self._quote_event(tick))
            self._wake.set()

    def _quote_event(self, tick: _Tick) -> QuoteReceived:
        q = tick.quote
        return QuoteReceived(
            occurred_at=tick.received_at,
            producer=SERVICE,
            correlation_id=new_event_id(),
            symbol=q.symbol,
            bid=q.bid,
            ask=q.ask,
            bid_size=q.bid_size,
            ask_size=q.ask_size,
            quoted_at=q.quoted_at,
        )

    def _emit(self, event: Event) -> None:
        self._outbox.append(event)
        self._wake.set()

    async def _publisher(self) -> None:
        """Publish queued events and throttled quotes as they fall due (real time)."""
        while True:
            due = self._throttle.next_due()
            timeout = None if due is None else max(0.0, due - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        if not hasattr(self, "_throttle"):
            return
        released = self._throttle.due(time.monotonic())
        events, self._outbox = self._outbox, []
        events.extend(self._quote_event(t) for t in released)
        if not events:
            return
        try:
            await self.bus.publish_many(events, timeout=10.0)
        except Exception as exc:  # quotes are replaceable; transitions are logged for ops
            self.context.metrics.error("PUBLISH_FAILED")
            lost = sorted({e.type for e in events})
            self._log.error(
                "publish failed; events dropped", count=len(events), types=lost, error=repr(exc)
            )
            return
        self._m_published.inc(sum(1 for e in events if isinstance(e, QuoteReceived)))

    # --- scheduler ------------------------------------------------------------------

    async def _scheduler(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:  # the schedule must survive any single failure
                self._log.exception("scheduler pass failed")
            await asyncio.sleep(self._settings.tick_s)

    async def _tick(self) -> None:
        now = self._clock.now()
        today = market_hours.ny_date(now)
        market_open = market_hours.is_market_open(now)
        if self._account is None:
            if time.monotonic() >= self._next_credentials_attempt:
                self._next_credentials_attempt = (
                    time.monotonic() + self._settings.credentials_retry_s
                )
                self._job("connect", self._connect())
        else:
            await self._expire_leases(now)
            if self._chain_cadence.due(now) or today != self._chain_day:
                self._chain_day = today
                self._job("chains", self._refresh_chains())
            if self._window_cadence.due(now):
                self._job("window", self._update_window(today))
            if self._metrics_cadence.due(now):
                self._job("metrics", self._refresh_metrics())
        if self._balances_cadence.due(now):
            self._job("balances", self._poll_balances())
        self._check_staleness(now, today if market_open else None)
        if market_open and self._bands_cadence.due(now):
            self._recompute_bands(now, today)
        if self._stream is not None:
            self._m_watched.set(self._stream.health().subscriptions)

    def _job(self, name: str, work: Awaitable[None]) -> None:
        """Run ``work`` in the background unless a job of that name is still running."""
        running = self._jobs.get(name)
        if running is not None and not running.done():
            close = getattr(work, "close", None)
            if close is not None:
                close()  # never awaited: close the coroutine so Python does not warn
            return

        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except SenexError as exc:
                self._log.warning("job failed", job=name, kind=exc.kind.value, error=exc.message)
            except Exception:
                self._log.exception("job failed", job=name)

        self._jobs[name] = asyncio.create_task(run(), name=f"md-{name}")

    # --- credentials and the stream -------------------------------------------------

    def _link_mode(self) -> LinkMode:
        return LinkMode.PAPER if self._broker_settings.mode is TradingMode.PAPER else LinkMode.LIVE

    async def _connect(self) -> None:
        """Pick the market-data account, open its DXLink stream, subscribe the basics."""
        account = await self._choose_account()
        if account is None:
            return
        assert self._adapter is not None
        session = await self._adapter.session_for(account)
        stream = MarketStream(session, clock=self._clock)
        stream.start()
        self._stream = stream
        self._account = account
        self._broker_status = f"ok (market data via account {account})"
        self._log.info("market data stream started", account=account)
        start = self._clock.now() - timedelta(days=self._settings.candle_history_days)
        for underlying in self._underlyings:
            sub = stream.daily_candles(underlying, start)
            self._candle_subs.append(sub)
            self._candle_tasks.append(
                asyncio.create_task(
                    self._pump_candles(underlying, sub), name=f"md-candles-{underlying}"
                )
            )
        await self._resync_feeds()

    async def _choose_account(self) -> str | None:
        """SENEX_MARKET_DATA_ACCOUNT, else the first linked account, else (paper) the default."""
        assert self._vault is not None
        assert self._adapter is not None
        mode = self._link_mode()
        links = [link for link in await self._vault.links() if link.mode is mode]
        wanted = self._settings.account
        if wanted is not None:
            if any(link.account_number == wanted for link in links):
                return wanted
            self._broker_status = f"account {wanted} (SENEX_MARKET_DATA_ACCOUNT) is not linked"
            self._log.warning("market-data account not linked; retrying", account=wanted)
            return None
        if links:
            return links[0].account_number
        if mode is LinkMode.PAPER:
            # The simulator's default customer, as `senex account link --paper` would use.
            credentials = BrokerCredentials(
                client_secret=self._broker_settings.paper_client_secret,
                refresh_token=self._broker_settings.paper_refresh_token,
            )
            try:
                accounts = await self._adapter.verify_credentials(credentials)
            except SenexError as exc:
                self._broker_status = f"simulator unreachable: {exc.kind.value}: {exc.message}"
                raise
            if not accounts:
                self._broker_status = "the simulator's default customer has no account"
                return None
            number = accounts[0].account_number
            assert self._credentials is not None
            self._credentials.static[number] = credentials
            return number
        self._broker_status = "no linked account"
        self._log.warning("no linked account for market data; retrying")
        return None

    async def _pump_candles(self, underlying: str, sub: Subscription[DailyCandle]) -> None:
        closes = self._closes[underlying]
        async for candle in sub:
            closes.upsert(candle.day, candle.close)

    async def _resync_feeds(self) -> None:
        """Make the stream carry the underlyings and every wanted option symbol."""
        if self._stream is None:
            return
        async with self._feeds_lock:
            await self._underlying_feed.set(self._stream, frozenset(self._underlyings))
            others = (self._window | self._leases.active() | self._demand.active()) - frozenset(
                self._underlyings
            )
            await self._option_feed.set(self._stream, others)

    def _subscribed(self) -> frozenset[str]:
        return self._underlying_feed.symbols | self._option_feed.symbols

    async def _expire_leases(self, now: datetime) -> None:
        ended = self._leases.expire(now)
        for symbol in ended:
            if symbol not in self._underlyings:
                self._staleness.unwatch(symbol)
                self._throttle.forget(symbol)
        demand_ended = self._demand.expire(now)
        if ended:
            self._published = frozenset(self._underlyings) | self._leases.active()
            self._log.info("leases ended", symbols=len(ended))
        if ended or demand_ended:
            await self._resync_feeds()

    # --- chains ---------------------------------------------------------------------

    async def _refresh_chains(self) -> None:
        assert self._adapter is not None
        assert self._account is not None
        try:
            for underlying in self._underlyings:
                self._chains[underlying] = await self._adapter.get_option_chain(
                    self._account, underlying
                )
        except SenexError as exc:
            self._chain_status = f"error: {exc.kind.value}: {exc.message}"
            self._chain_cadence.retry_at(self._clock.now() + CHAIN_RETRY)
            raise
        self._chain_status = "ok"
        await self._update_window(market_hours.ny_date(self._clock.now()))

    async def _chain(self, underlying: str) -> OptionChain:
        chain = self._chains.get(underlying)
        if chain is not None:
            return chain
        if self._adapter is None or self._account is None:
            raise BrokerUnavailable(f"no broker session for market data: {self._broker_status}")
        chain = await self._adapter.get_option_chain(self._account, underlying)
        self._chains[underlying] = chain
        return chain

    async def _update_window(self, today: date) -> None:
        """Keep the strategy's default window (plus a margin) subscribed."""
        s = self._settings
        symbols: set[str] = set()
        for underlying in self._underlyings:
            chain = self._chains.get(underlying)
            cached = self._cache.get(underlying)
            if chain is None or cached is None:
                # Retry on the next pass rather than in 30 s: the first quote is near.
                self._window_cadence.reset()
                if self._window:
                    symbols |= {w for w in self._window if w.startswith(underlying)}
                continue
            window = select_window(
                chain,
                today=today,
                mid=cached.quote.mid,
                min_dte=s.default_min_dte,
                max_dte=s.default_max_dte,
                strike_range=s.default_strike_range + s.window_margin,
            )
            symbols.update(window_symbols(window))
        if frozenset(symbols) != self._window:
            self._window = frozenset(symbols)
            self._log.info("default window subscribed", symbols=len(symbols))
            await self._resync_feeds()

    # --- market condition -----------------------------------------------------------

    async def _refresh_metrics(self) -> None:
        assert self._adapter is not None
        assert self._account is not None
        try:
            metrics = await self._adapter.get_market_metrics(self._account, self._underlyings)
        except SenexError as exc:
            self._log.warning("IV rank unavailable", kind=exc.kind.value, error=exc.message)
        else:
            for m in metrics:
                self._iv_rank[m.symbol] = m.iv_rank
        self._rate = await self._adapter.get_risk_free_rate(self._account)

    def _risk_free_rate(self) -> tuple[Decimal, RateSource]:
        rate = self._rate
        if rate is None or rate.source is RateSource.FALLBACK:
            return self.context.settings.risk_free_rate, RateSource.FALLBACK
        return rate.rate, rate.source

    def _recompute_bands(self, now: datetime, today: date) -> None:
        for underlying in self._underlyings:
            cached = self._cache.get(underlying)
            closes = self._closes[underlying].window(today)
            if (
                cached is None
                or len(closes) < CLOSES_NEEDED
                or self._staleness.is_stale(underlying)
            ):
                # Not enough data to judge: try again on the next pass, not in 30 s.
                self._bands_cadence.reset()
                continue
            condition = evaluate(closes, cached.quote.mid)
            previous = self._conditions.get(underlying)
            self._conditions[underlying] = condition
            if is_change(previous, condition):
                self._emit(
                    MarketConditionChanged(
                        occurred_at=now,
                        producer=SERVICE,
                        correlation_id=new_event_id(),
                        symbol=underlying,
                        price=condition.price,
                        bands=condition.bands,
                        band_position=condition.band_position,
                        stressed=condition.stressed,
                        stressed_reason=condition.stressed_reason,
                    )
                )

    def _check_staleness(self, now: datetime, today_if_open: date | None) -> None:
        session_open = None
        if today_if_open is not None:
            bounds = market_hours.session_bounds(today_if_open)
            session_open = bounds[0] if bounds is not None else None
        went = self._staleness.check(now, session_open)
        if went:
            stream_state = self._stream_description()
            for w in went:
                last = "never" if w.last_quote_at is None else w.last_quote_at.isoformat()
                reason = (
                    f"no quote for {int(w.age.total_seconds())} s (last {last}); {stream_state}"
                )
                self._emit(
                    MarketDataStale(
                        occurred_at=now,
                        producer=SERVICE,
                        correlation_id=new_event_id(),
                        symbol=w.symbol,
                        last_quote_at=w.last_quote_at,
                        max_age_seconds=self._settings.stale_after_s,
                        reason=reason,
                    )
                )
                self._log.warning("quotes stale", symbol=w.symbol, reason=reason)
        self._m_stale.set(len(self._staleness.stale_symbols()))

    def _stream_description(self) -> str:
        if self._stream is None:
            return f"stream not started ({self._broker_status})"
        h = self._stream.health()
        text = f"stream {h.state.value}, {h.reconnects} reconnects"
        if h.last_error:
            text += f", last error {h.last_error_kind}: {h.last_error}"
        return text

    # --- balances -------------------------------------------------------------------

    async def _poll_balances(self) -> None:
        """Follow every linked account: a balance stream each, and a REST poll now."""
        assert self._vault is not None
        assert self._adapter is not None
        mode = self._link_mode()
        accounts = {link.account_number for link in await self._vault.links() if link.mode is mode}
        for gone in set(self._account_streams) - accounts:
            stream, task = self._account_streams.pop(gone)
            task.cancel()
            await stream.aclose()
            self._balance_changes.forget(gone)
        for account in sorted(accounts):
            try:
                await self._follow_account(account)
            except SenexError as exc:  # one account's failure must not stop the others
                self._log.warning(
                    "balance poll failed", account=account, kind=exc.kind.value, error=exc.message
                )

    async def _follow_account(self, account: str) -> None:
        assert self._adapter is not None
        if account not in self._account_streams:
            session = await self._adapter.session_for(account)
            stream = AccountStream(account, session, clock=self._clock)
            stream.start()
            task = asyncio.create_task(
                self._pump_balances(stream.balances()), name=f"md-balances-{account}"
            )
            self._account_streams[account] = (stream, task)
        await self._balances(await self._adapter.get_balances(account))

    async def _pump_balances(self, sub: Subscription[Balances]) -> None:
        async for balances in sub:
            try:
                await self._balances(balances)
            except Exception:  # keep following the account
                self._log.exception("balance update failed", account=balances.account_number)

    async def _balances(self, balances: Balances) -> None:
        account = balances.account_number
        figures = BalanceFigures.of(balances)
        if not self._balance_changes.should_publish(account, figures):
            return
        event = BalanceUpdated(
            occurred_at=self._clock.now(),
            producer=SERVICE,
            account_id=account,
            correlation_id=new_event_id(),
            derivative_buying_power=balances.derivative_buying_power,
            net_liquidating_value=balances.net_liquidating_value,
            cash_balance=balances.cash_balance,
            equity_buying_power=balances.equity_buying_power,
            maintenance_requirement=balances.maintenance_requirement,
            broker_updated_at=balances.updated_at,
        )
        # Published directly (not via the outbox) so a failed publish is retried next poll.
        await self.bus.publish(event)
        self._balance_changes.published(account, figures)

    # --- queries --------------------------------------------------------------------

    def _fresh_underlying(self, underlying: str) -> Quote:
        """The underlying's quote, or MARKET_DATA_STALE (none yet, or stale)."""
        cached = self._cache.get(underlying)
        if cached is None:
            raise MarketDataStaleError(
                f"no quote for {underlying} yet ({self._stream_description()})",
                details={"symbol": underlying},
            )
        if self._staleness.is_stale(underlying):
            since = self._staleness.stale_since(underlying)
            raise MarketDataStaleError(
                f"quotes for {underlying} are stale since "
                f"{since.isoformat() if since else '?'}: last quote received "
                f"{cached.received_at.isoformat()} ({self._stream_description()})",
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

    async def watch_symbols(self, command: WatchSymbols) -> WatchReply:
        """Lease quote subscriptions (published as QuoteReceived) until the lease ends."""
        now = self._clock.now()
        until = now + timedelta(seconds=command.lease_seconds)
        symbols = list(dict.fromkeys(command.symbols))
        added = self._leases.extend(symbols, until)
        for symbol in added:
            self._staleness.watch(symbol, now)
        if added:
            self._published = frozenset(self._underlyings) | self._leases.active()
            await self._resync_feeds()
        return WatchReply(symbols=tuple(symbols), watched_until=until)

    async def get_chain_snapshot(self, command: GetChainSnapshot) -> ChainSnapshotReply:
        """The chain near the money from the cache; new strikes are subscribed and awaited."""
        now = self._clock.now()
        underlying = str(command.underlying)
        quote = self._fresh_underlying(underlying)
        chain = await self._chain(underlying)
        window = select_window(
            chain,
            today=market_hours.ny_date(now),
            mid=quote.mid,
            min_dte=command.min_dte,
            max_dte=command.max_dte,
            strike_range=command.strike_range,
        )
        symbols = window_symbols(window)
        outside = [s for s in symbols if s not in self._window]
        if outside:
            self._demand.extend(outside, now + timedelta(seconds=self._settings.snapshot_lease_s))
        new = [s for s in symbols if s not in self._subscribed()]
        if new:
            if self._stream is None:
                raise BrokerUnavailable(
                    f"no market-data stream to subscribe new strikes: {self._broker_status}"
                )
            await self._resync_feeds()
            await self._await_quotes(new, command.wait_seconds)

        def latest(symbol: str) -> Quote | None:
            cached = self._cache.get(symbol)
            return cached.quote if cached is not None else None

        expirations = tuple(
            ChainSnapshotExpiration(
                expiration=e.expiration,
                dte=e.dte,
                strikes=tuple(
                    ChainStrikeQuotes(strike=k.strike, put=latest(k.put), call=latest(k.call))
                    for k in e.strikes
                ),
            )
            for e in window
        )
        return ChainSnapshotReply(
            underlying=command.underlying,
            as_of=now,
            underlying_quote=quote,
            expirations=expirations,
            missing=tuple(s for s in symbols if s not in self._cache),
        )

    async def _await_quotes(self, symbols: Iterable[str], wait_seconds: float) -> None:
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

    async def get_market_condition(self, command: GetMarketCondition) -> MarketConditionReply:
        """Price, bands over the 19 closes + the current mid, stress, IV rank, rate."""
        now = self._clock.now()
        underlying = str(command.underlying)
        quote = self._fresh_underlying(underlying)
        closes_book = self._closes.get(underlying)
        if closes_book is None:
            raise NotFound(f"{underlying} is not among the underlyings market data follows")
        closes = closes_book.window(market_hours.ny_date(now))
        if len(closes) < CLOSES_NEEDED:
            raise MarketDataStaleError(
                f"only {len(closes)} of {CLOSES_NEEDED} daily closes of {underlying} received "
                f"so far ({self._stream_description()})",
                details={"symbol": underlying},
            )
        condition = evaluate(closes, quote.mid)
        rate, source = self._risk_free_rate()
        return MarketConditionReply(
            underlying=command.underlying,
            as_of=now,
            quote=quote,
            price=condition.price,
            daily_closes=closes,
            bands=condition.bands,
            band_position=condition.band_position,
            stressed=condition.stressed,
            stressed_reason=condition.stressed_reason,
            iv_rank=self._iv_rank.get(underlying),
            risk_free_rate=rate,
            risk_free_rate_source="BROKER" if source is RateSource.BROKER else "FALLBACK",
        )
