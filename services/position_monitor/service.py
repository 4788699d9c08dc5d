"""The position monitor's shell: marks, exits, broker sync and notifications (DOMAIN.md 6-8).

State is `MonitorState` (every account's `PositionBook`, the exit orders of each spread
and where they stand, e-mail topics), built by a `Follower` in stream order and only
so: the live book is the one ``senex replay`` folds from the log. Decisions come from
the pure core (`services.position_monitor.core`).

One decision loop, under one lock shared with the commands, makes every decision. It
runs every ``tick_s`` real seconds and whenever the follower folds an event. After
publishing, it waits until the follower has folded its own events (the publish ack's
stream sequence), so the next decision reads what it just decided; decision ids are
deterministic besides (exit order ids from the core, event ids from `event_ids`), so
a decision made twice is dropped by the bus and by execution. Each pass:

1. closing fills: a completely filled exit -> ``SpreadClosed`` with its realised P&L;
   ``PositionClosed`` once no spread is open (for every opened position, managed or not:
   a fill is a fact);
2. marks (app-managed, active positions): ``PositionUpdated`` at most every 10 s while
   a figure changes; stop loss (replacing the spread's profit target or time exit) and
   the working stop re-priced to the new natural every minute of business time;
3. the daily 7-DTE run at 15:45 New York (12:45 on half days), and at start-up for the
   run already due: time exits at the day's ceiling, re-priced day by day;
4. the broker sync every ``sync_interval_s`` business seconds per account, after an
   account-stream reconnect or position notification, and on ``SyncPositions``.

Quotes: the monitor leases its options from market data (``WatchSymbols``, renewed at
half-life) and polls ``GetQuotes`` every ``quote_poll_s`` real seconds rather than
consuming ``QuoteReceived``: one request per poll for all positions, no subscription to
the market stream to keep alive, and the latest quote is all a valuation needs (market
data publishes at most 1/s per symbol anyway).

Exits are decided by publishing ``ExitOrderPlaced``; execution places them, cancelling
the order each one supersedes. The monitor never edits the broker: the sync only flags.

Notifications (live reactions): ``PositionNeedsAttention``, ``SpreadClosed`` and
``TradingSuspended`` -> ``NotificationRequested`` (the core's routing and the user's
e-mail topics; the id derives from the cause, so a redelivery asks once);
``NotificationRequested`` with the EMAIL channel -> the `EmailNotifier` (queued: a
failed or slow e-mail never blocks anything). An e-mail goes to the address in the
account's settings, else to ``SENEX_SMTP_RECIPIENT`` (an operator's catch-all).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from prometheus_client import Counter

from libs.broker.adapter import BrokerAdapter, CredentialsSource
from libs.broker.credentials import VaultCredentials
from libs.broker.feeds import AccountFeed
from libs.broker.models import BrokerPosition
from libs.broker.settings import BrokerSettings
from libs.broker.streaming import AccountStream, Subscription
from libs.broker.vault import CredentialsVault
from libs.contracts.commands import (
    ClosePosition,
    ClosePositionReply,
    GetPosition,
    GetPositions,
    GetQuotes,
    PositionListReply,
    PositionReply,
    QuotesReply,
    SyncPositions,
    SyncPositionsReply,
    WatchReply,
    WatchSymbols,
)
from libs.contracts.envelope import Causation, Event, new_event_id
from libs.contracts.errors import (
    InvalidState,
    MarketDataStaleError,
    NotFound,
    SenexError,
)
from libs.contracts.execution import OrderPurpose
from libs.contracts.market import Quote
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    PositionClosed,
    PositionNeedsAttention,
    PositionStatus,
    PositionUpdated,
    SpreadClosed,
)
from libs.contracts.system import (
    NotificationRequested,
    NotificationTopic,
    TradingSuspended,
)
from libs.domain.money import debit_limit
from libs.runtime.clock import Clock
from libs.runtime.following import FollowingService
from libs.runtime.runner import HealthReport, ServiceContext
from services.position_monitor.core import (
    STOP_LOSS_REPRICE_INTERVAL,
    ExitDecision,
    MissingQuote,
    Notice,
    Published,
    SpreadClose,
    SyncFinding,
    ValuationFigures,
    WorkingExit,
    attention_notice,
    close_by_fill,
    diff_broker_positions,
    exit_decision,
    is_new_finding,
    latest_run_day,
    notice,
    plan_stop_loss,
    plan_time_exits,
    position_realized_pnl,
    reprice_stop_loss,
    spread_closed_notice,
    valuation_due,
    value_position,
    value_spread,
)
from services.position_monitor.core.errors import InvalidFill
from services.position_monitor.event_ids import (
    exit_placed_id,
    position_closed_id,
    spread_closed_id,
)
from services.position_monitor.metrics import PortfolioCollector
from services.position_monitor.notifier import EmailNotifier, NotifierStopped
from services.position_monitor.projection import PositionRecord
from services.position_monitor.settings import MonitorSettings, SmtpSettings
from services.position_monitor.state import MonitorState
from services.position_monitor.syncing import app_positions, broker_holdings, confirmed
from services.position_monitor.views import position_view

SERVICE = "position_monitor"
#: GetQuotes takes at most this many symbols per request.
_QUOTES_PER_REQUEST = 200
#: WatchSymbols takes at most this many symbols per request.
_WATCH_PER_REQUEST = 500


class FoldLagging(SenexError):
    """What the monitor published was not folded back in time (the bus is lagging)."""


@dataclass
class _PendingSync:
    """Findings of a first broker read, waiting for the confirming second read."""

    findings: list[SyncFinding]
    confirm_at: float
    """Monotonic real time of the second read."""


class PositionMonitorService(FollowingService):
    """Values positions, decides their exits, syncs with the broker, notifies the user."""

    name = SERVICE

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        settings: MonitorSettings | None = None,
        smtp: SmtpSettings | None = None,
        broker_settings: BrokerSettings | None = None,
        credentials: CredentialsSource | None = None,
        durable: str = SERVICE,
    ) -> None:
        """``credentials`` replaces the vault (tests); settings default to the environment."""
        super().__init__(SERVICE, clock=clock, durable=durable)
        self._settings = settings or MonitorSettings()
        self._smtp_given = smtp
        self._broker_settings_given = broker_settings
        self._credentials_given = credentials
        self._state = MonitorState()
        self._adapter: BrokerAdapter | None = None
        self._notifier: EmailNotifier | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._quotes: dict[str, Quote] = {}
        self._leases: dict[str, datetime] = {}
        self._next_quote_poll = 0.0
        self._quotes_fresh = False
        self._last_run_day: date | None = None
        self._next_sync: dict[str, datetime] = {}
        self._sync_now: set[str] = set()
        self._pending_sync: dict[str, _PendingSync] = {}
        self._feeds: dict[str, AccountFeed] = {}
        self._loop_task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    @property
    def adapter(self) -> BrokerAdapter:
        """The broker adapter (after start)."""
        if self._adapter is None:
            raise RuntimeError("the position monitor is not started")
        return self._adapter

    @property
    def state(self) -> MonitorState:
        """What the service knows (read-only use)."""
        return self._state

    @property
    def notifier(self) -> EmailNotifier:
        """The e-mail notifier (after start)."""
        if self._notifier is None:
            raise RuntimeError("the position monitor is not started")
        return self._notifier

    async def start(self, ctx: ServiceContext) -> None:
        broker_settings = self._broker_settings_given or BrokerSettings()
        await self.connect(ctx)
        credentials = self._credentials_given
        if credentials is None:
            vault = await CredentialsVault.open(ctx.settings.database_url, broker_settings)
            credentials = VaultCredentials(vault, broker_settings)
        self._adapter = BrokerAdapter(broker_settings, credentials)
        self._init_metrics(ctx)
        self._notifier = EmailNotifier(
            self._smtp_given or SmtpSettings(),
            # The account's own address; SENEX_SMTP_RECIPIENT catches the rest.
            self._state.email_of,
            registry=ctx.metrics.registry,
        )
        await self._notifier.start()
        await self.follow(self._state.apply, self._react)
        await self.serve(
            {
                GetPosition.VERB: self.get_position,
                GetPositions.VERB: self.get_positions,
                ClosePosition.VERB: self.close_position,
                SyncPositions.VERB: self.sync_positions,
            }
        )
        self._loop_task = asyncio.create_task(self._run_forever(), name="monitor-loop")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *(f.task for f in self._feeds.values())) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for feed in self._feeds.values():
            await feed.stream.aclose()
        self._feeds.clear()
        await self.stop_following()  # no reaction may reach the broker once it is closed
        if self._notifier is not None:
            await self._notifier.stop()
        if self._adapter is not None:
            await self._adapter.aclose()
        await self.disconnect()

    async def health(self) -> HealthReport:
        report = await super().health()
        loop = self._loop_task
        decisions = "ok" if loop is not None and not loop.done() else "not running"
        checks = {**report.checks, "decisions": decisions}
        return HealthReport(all(v == "ok" for v in checks.values()), checks)

    def _init_metrics(self, ctx: ServiceContext) -> None:
        registry = ctx.metrics.registry
        self._m_exits = Counter(
            "senex_monitor_exits_total",
            "Exit orders the monitor decided, by purpose.",
            ["service", "purpose"],
            registry=registry,
        )
        self._m_closed = Counter(
            "senex_monitor_spreads_closed_total",
            "Spreads closed, by reason.",
            ["service", "reason"],
            registry=registry,
        )
        self._m_findings = Counter(
            "senex_monitor_sync_findings_total",
            "Broker-sync findings flagged, by reason.",
            ["service", "reason"],
            registry=registry,
        )
        registry.register(PortfolioCollector(SERVICE, lambda: self._state))
        self._metrics = ctx.metrics

    # --- publishing -----------------------------------------------------------------

    def _env(self, account_id: str, cause: Causation | None = None) -> dict[str, Any]:
        links: dict[str, Any] = (
            dict(cause) if cause is not None else {"correlation_id": new_event_id()}
        )
        return {
            "occurred_at": self.clock.now(),
            "producer": SERVICE,
            "account_id": account_id,
            **links,
        }

    async def _publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` and wait until the follower has folded them (stream order)."""
        if not events:
            return
        acks = await self.bus.publish_many(events)
        target = max(ack.sequence for ack in acks)
        follower = self._follower
        assert follower is not None
        deadline = time.monotonic() + self._settings.fold_timeout_s
        while follower.last_sequence < target:
            if time.monotonic() > deadline:
                raise FoldLagging(
                    f"published up to sequence {target}; folded only {follower.last_sequence}"
                )
            await asyncio.sleep(0.005)

    def _exit_event(self, account: str, decision: ExitDecision) -> ExitOrderPlaced:
        return ExitOrderPlaced(
            event_id=exit_placed_id(decision.order_id),
            **self._env(account),
            **decision.event_fields(),
        )

    async def _place_exits(self, account: str, decisions: Iterable[ExitDecision]) -> list[UUID]:
        """Publish the decisions not already taken; the order ids of all of them."""
        ids: list[UUID] = []
        events: list[Event] = []
        for decision in decisions:
            ids.append(decision.order_id)
            if self._state.exit_order(decision.order_id) is None:
                events.append(self._exit_event(account, decision))
                self._m_exits.labels(SERVICE, decision.purpose.value).inc()
                self._log.info(
                    "exit decided",
                    account_id=account,
                    position_id=str(decision.position_id),
                    spread=decision.spread_kind.value,
                    purpose=decision.purpose.value,
                    limit_price=str(decision.limit_price),
                    reason=decision.reason,
                )
        await self._publish(events)
        return ids

    # --- the decision loop ----------------------------------------------------------

    def _poke(self) -> None:
        self._wake.set()

    async def _run_forever(self) -> None:
        while True:
            try:
                await self._poll_quotes_if_due()
                async with self._lock:
                    await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next pass tries again; logged with the trace
                self._log.exception("decision pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.tick_s)

    async def run_once(self) -> None:
        """One pass now (tests, and the commands' freshness)."""
        await self._poll_quotes_if_due(force=True)
        async with self._lock:
            await self._pass()

    async def _pass(self) -> None:
        now = self.clock.now()
        await self._close_filled()
        if self._quotes_fresh:
            self._quotes_fresh = False
            await self._mark_to_market(now)
        await self._daily_run(now)
        await self._syncs(now)

    # --- 1. closing fills -----------------------------------------------------------

    async def _close_filled(self) -> None:
        for account, record in list(self._state.open_positions()):
            events: list[Event] = []
            closed_pnl = [
                s.realized_pnl for s in record.spreads if not s.open and s.realized_pnl is not None
            ]
            still_open = 0
            for spread in record.spreads:
                if not spread.open:
                    continue
                filled = self._state.closing_fill(record.position_id, spread.spread.kind)
                if filled is None:
                    still_open += 1
                    continue
                try:
                    close = close_by_fill(
                        spread.spread, filled.purpose, filled.order_id, filled.fills
                    )
                except InvalidFill as exc:
                    # Fills that do not close the spread exactly: the sync flags the
                    # broker's holdings; nothing is booked on a guess.
                    self._log.error(
                        "a filled exit does not close its spread",
                        position_id=str(record.position_id),
                        order_id=str(filled.order_id),
                        error=str(exc),
                    )
                    still_open += 1
                    continue
                events.append(self._spread_closed(account, record, close))
                closed_pnl.append(close.realized_pnl)
                self._m_closed.labels(SERVICE, close.reason.value).inc()
            if still_open == 0:
                # Also after a crash between the last SpreadClosed and this event.
                events.append(
                    PositionClosed(
                        event_id=position_closed_id(record.position_id),
                        **self._env(account, events[-1].causation() if events else None),
                        position_id=record.position_id,
                        realized_pnl=position_realized_pnl(closed_pnl),
                    )
                )
            await self._publish(events)

    def _spread_closed(
        self, account: str, record: PositionRecord, close: SpreadClose
    ) -> SpreadClosed:
        self._log.info(
            "spread closed",
            account_id=account,
            position_id=str(record.position_id),
            spread=close.spread_kind.value,
            reason=close.reason.value,
            realized_pnl=str(close.realized_pnl),
        )
        return SpreadClosed(
            event_id=spread_closed_id(record.position_id, close.spread_kind),
            **self._env(account),
            position_id=record.position_id,
            **close.event_fields(),
        )

    # --- 2. marks: valuation and stop loss --------------------------------------------

    def _managed(self) -> list[tuple[str, PositionRecord]]:
        """Open positions whose exits the monitor decides."""
        return [
            (account, record)
            for account, record in self._state.open_positions()
            if record.app_managed and record.active and any(s.open for s in record.spreads)
        ]

    def _symbols(self) -> dict[str, set[str]]:
        """The open spreads' option symbols, per account."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for account, record in self._managed():
            for spread in record.spreads:
                if spread.open:
                    wanted[account].update((spread.spread.short_symbol, spread.spread.long_symbol))
        return wanted

    async def _poll_quotes_if_due(self, *, force: bool = False) -> None:
        if not force and time.monotonic() < self._next_quote_poll:
            return
        self._next_quote_poll = time.monotonic() + self._settings.quote_poll_s
        wanted = self._symbols()
        if not wanted:
            return
        try:
            await self._renew_leases(wanted)
            for account, symbols in wanted.items():
                await self._fetch_quotes(account, sorted(symbols))
        except SenexError as exc:
            # Without quotes nothing is valued and no stop is decided; time exits and
            # fills go on. Logged each poll until market data answers again.
            self._log.warning("quotes unavailable", kind=exc.kind.value, error=exc.message)
            return
        self._quotes_fresh = True

    async def _renew_leases(self, wanted: dict[str, set[str]]) -> None:
        now = self.clock.now()
        half = timedelta(seconds=self._settings.lease_seconds / 2)
        for account, symbols in wanted.items():
            due = sorted(s for s in symbols if self._leases.get(s, now) - now < half)
            for start in range(0, len(due), _WATCH_PER_REQUEST):
                chunk = tuple(due[start : start + _WATCH_PER_REQUEST])
                reply = await self.bus.request(
                    WatchSymbols(
                        account_id=account,
                        symbols=chunk,
                        lease_seconds=self._settings.lease_seconds,
                    ),
                    WatchReply,
                )
                for symbol in reply.symbols:
                    self._leases[symbol] = reply.watched_until

    async def _fetch_quotes(self, account: str, symbols: Sequence[str]) -> dict[str, Quote]:
        found: dict[str, Quote] = {}
        for start in range(0, len(symbols), _QUOTES_PER_REQUEST):
            chunk = tuple(symbols[start : start + _QUOTES_PER_REQUEST])
            reply = await self.bus.request(
                GetQuotes(account_id=account, symbols=chunk), QuotesReply
            )
            for quote in reply.quotes:
                found[quote.symbol] = quote
        self._quotes.update(found)
        return found

    async def _mark_to_market(self, now: datetime) -> None:
        for account, record in self._managed():
            if record.expiration is None:
                continue
            open_spreads = [s for s in record.spreads if s.open]
            try:
                valuation = value_position(
                    [s.spread for s in open_spreads], record.expiration, self._quotes, now
                )
            except MissingQuote:
                continue  # not every leg quoted yet: nothing valued, nothing decided
            events: list[Event] = []
            if valuation_due(_published(record), valuation.figures, now):
                events.append(
                    PositionUpdated(
                        **self._env(account),
                        position_id=record.position_id,
                        **valuation.event_fields(),
                    )
                )
            decisions: list[ExitDecision] = []
            for spread in open_spreads:
                kind = spread.spread.kind
                if self._state.closing_fill(record.position_id, kind) is not None:
                    continue  # closed by a fill the next pass books
                value = valuation.spread(kind)
                assert value is not None
                working = self._state.working_exit(spread)
                decision: ExitDecision | None
                if working is not None and working.purpose is OrderPurpose.STOP_LOSS:
                    decision = self._reprice_due(record, spread.spread, value, working, now)
                else:
                    decision = plan_stop_loss(record.position_id, spread.spread, value, working)
                if decision is not None:
                    decisions.append(decision)
            await self._publish(events)
            await self._place_exits(account, decisions)

    def _reprice_due(
        self,
        record: PositionRecord,
        spread: Any,
        value: Any,
        working: WorkingExit,
        now: datetime,
    ) -> ExitDecision | None:
        placed = self._state.exit_order(working.order_id)
        if placed is None or now - placed.decided_at < STOP_LOSS_REPRICE_INTERVAL:
            return None
        return reprice_stop_loss(record.position_id, spread, value, working)

    # --- 3. the daily 7-DTE run -------------------------------------------------------

    async def _daily_run(self, now: datetime) -> None:
        run_day = latest_run_day(now)
        if run_day is None or run_day == self._last_run_day:
            return
        for account, record in self._managed():
            if record.expiration is None:
                continue
            open_spreads = [s for s in record.spreads if s.open]
            working = {
                s.spread.kind: w
                for s in open_spreads
                if (w := self._state.working_exit(s)) is not None
            }
            decisions = plan_time_exits(
                record.position_id,
                record.expiration,
                [
                    s.spread
                    for s in open_spreads
                    if self._state.closing_fill(record.position_id, s.spread.kind) is None
                ],
                working,
                now,
            )
            await self._place_exits(account, decisions)
        self._last_run_day = run_day
        self._log.info("daily exit run done", run_day=run_day.isoformat())

    # --- 4. broker sync ---------------------------------------------------------------

    def _sync_accounts(self) -> list[str]:
        return sorted(a for a, book in self._state.books.items() if app_positions(book))

    async def _syncs(self, now: datetime) -> None:
        for account in self._sync_accounts():
            await self._ensure_feed(account)
            feed = self._feeds.get(account)
            if feed is not None and feed.reconnected():
                self._sync_now.add(account)
            pending = self._pending_sync.get(account)
            try:
                if pending is not None:
                    if time.monotonic() >= pending.confirm_at:
                        del self._pending_sync[account]
                        second = await self._diff(account)
                        await self._flag(account, confirmed(pending.findings, second))
                elif account in self._sync_now or now >= self._next_sync.get(account, now):
                    self._sync_now.discard(account)
                    self._next_sync[account] = now + timedelta(
                        seconds=self._settings.sync_interval_s
                    )
                    first = await self._diff(account)
                    if first:
                        self._pending_sync[account] = _PendingSync(
                            first, time.monotonic() + self._settings.sync_settle_s
                        )
            except SenexError as exc:
                self._log.warning(
                    "broker sync failed", account_id=account, kind=exc.kind.value, error=exc.message
                )

    async def _diff(self, account: str) -> list[SyncFinding]:
        """Read the broker now; the findings for ``account`` (unowned holdings logged)."""
        held = broker_holdings(await self.adapter.get_positions(account))
        diff = diff_broker_positions(app_positions(self._state.book(account)), held)
        for unowned in diff.unowned:
            self._log.info(
                "broker holds an option no position accounts for (not adopted)",
                account_id=account,
                symbol=unowned.symbol,
                quantity=unowned.quantity,
            )
        return list(diff.findings)

    async def _flag(self, account: str, findings: Iterable[SyncFinding]) -> None:
        events: list[Event] = []
        for finding in findings:
            record = self._state.position(account, finding.position_id)
            if record is None:
                continue
            attention = record.attention
            if not is_new_finding(
                finding,
                attention.reason if attention is not None else None,
                attention.held_legs if attention is not None else (),
            ):
                continue
            gone = finding.reason is AttentionReason.GONE_AT_BROKER
            events.append(
                PositionNeedsAttention(
                    **self._env(account),
                    position_id=finding.position_id,
                    underlying=finding.underlying,
                    reason=finding.reason,
                    message=finding.message,
                    # Gone: nothing left to manage. A mismatch keeps its exits working
                    # (closing orders can only close) while a human looks.
                    app_managed=False if gone else record.app_managed,
                    active=finding.active,
                    held_legs=finding.held_legs,
                )
            )
            self._m_findings.labels(SERVICE, finding.reason.value).inc()
            self._log.warning(
                "position needs attention after the broker sync",
                account_id=account,
                position_id=str(finding.position_id),
                reason=finding.reason.value,
                message=finding.message,
            )
        await self._publish(events)

    async def _ensure_feed(self, account: str) -> None:
        if account in self._feeds:
            return
        try:
            session = await self.adapter.session_for(account)
        except SenexError as exc:
            self._log.warning(
                "no account stream", account_id=account, kind=exc.kind.value, error=exc.message
            )
            return
        stream = AccountStream(account, session, clock=self.clock)
        positions = stream.positions()
        stream.start()
        task = asyncio.create_task(
            self._pump_positions(account, positions), name=f"monitor-positions-{account}"
        )
        self._feeds[account] = AccountFeed(stream, task)

    async def _pump_positions(self, account: str, positions: Subscription[BrokerPosition]) -> None:
        """A position change at the broker: sync the account soon (confirmed as usual)."""
        async for _ in positions:
            self._sync_now.add(account)
            self._poke()

    # --- reactions: notifications -----------------------------------------------------

    async def _react(self, event: Event) -> None:
        self._poke()
        account = event.account_id
        if account is None:
            return
        if isinstance(event, NotificationRequested):
            try:
                self.notifier.submit(event)
            except NotifierStopped:
                self._log.warning(
                    "notifier stopped; e-mail not queued", event_id=str(event.event_id)
                )
            return
        found = self._notice_of(account, event)
        if found is None or found.notification_id in self._state.notified:
            return
        await self.bus.publish(
            NotificationRequested(
                event_id=found.notification_id,
                **self._env(account, event.causation()),
                **found.event_fields(),
            )
        )

    def _notice_of(self, account: str, event: Event) -> Notice | None:
        topics = self._state.topics(account)
        if isinstance(event, PositionNeedsAttention):
            return attention_notice(
                event.reason,
                cause_id=event.event_id,
                underlying=event.underlying,
                message=event.message,
                email_topics=topics,
                position_id=event.position_id,
                order_id=event.order_id,
            )
        if isinstance(event, SpreadClosed):
            record = self._state.position(account, event.position_id)
            underlying = record.underlying if record is not None else "position"
            if event.closing_order_id is not None and event.exit_debit is not None:
                close = SpreadClose(
                    spread_kind=event.spread_kind,
                    reason=event.reason,
                    closing_order_id=event.closing_order_id,
                    exit_debit=event.exit_debit,
                    realized_pnl=event.realized_pnl,
                )
                return spread_closed_notice(
                    close,
                    cause_id=event.event_id,
                    underlying=underlying,
                    email_topics=topics,
                    position_id=event.position_id,
                )
            return None
        if isinstance(event, TradingSuspended):
            return notice(
                NotificationTopic.TRADING_SUSPENDED,
                cause_id=event.event_id,
                title=f"trading suspended ({event.reason.value})",
                message=event.message,
                email_topics=topics,
            )
        return None

    # --- commands -------------------------------------------------------------------

    def _record(self, account: str, position_id: UUID) -> PositionRecord:
        record = self._state.position(account, position_id)
        if record is None:
            raise NotFound(
                f"position {position_id} not found for account {account}",
                details={"position_id": str(position_id)},
            )
        return record

    async def get_position(self, command: GetPosition) -> PositionReply:
        """One position of the account."""
        record = self._record(command.account_id, command.position_id)
        return PositionReply(position=position_view(self._state, record))

    async def get_positions(self, command: GetPositions) -> PositionListReply:
        """The account's positions (open ones unless ``include_closed``), newest first."""
        return PositionListReply(positions=self._views(command.account_id, command.include_closed))

    def _views(self, account: str, include_closed: bool) -> tuple[Any, ...]:
        records = [
            r
            for r in self._state.book(account).positions.values()
            if (r.opened_at is not None or r.attention is not None)
            and (include_closed or r.status is PositionStatus.OPEN)
        ]
        views = [position_view(self._state, r) for r in records]
        views.sort(key=lambda v: v.opened_at, reverse=True)
        return tuple(views)

    async def close_position(self, command: ClosePosition) -> ClosePositionReply:
        """Close spreads now with MANUAL_EXIT orders at the natural closing debit."""
        account = command.account_id
        async with self._lock:
            record = self._record(account, command.position_id)
            if record.status is not PositionStatus.OPEN or record.opened_at is None:
                raise InvalidState(f"position {record.position_id} is not open")
            if not record.app_managed or not record.active:
                raise InvalidState(
                    f"position {record.position_id} is not app managed: close it at the broker"
                )
            wanted = set(command.spreads)
            spreads = [
                s for s in record.spreads if s.open and (not wanted or s.spread.kind in wanted)
            ]
            if not spreads:
                raise InvalidState(f"position {record.position_id} has no such open spread")
            symbols = sorted(
                {sym for s in spreads for sym in (s.spread.short_symbol, s.spread.long_symbol)}
            )
            quotes = await self._fetch_quotes(account, symbols)
            decisions: list[ExitDecision] = []
            kept: list[UUID] = []
            for spread in spreads:
                working = self._state.working_exit(spread)
                if working is not None and working.purpose is OrderPurpose.MANUAL_EXIT:
                    kept.append(working.order_id)  # already closing: asked twice
                    continue
                try:
                    value = value_spread(spread.spread, quotes)
                except MissingQuote as exc:
                    raise MarketDataStaleError(
                        f"no quote for {exc.symbol}: cannot price the closing order",
                        details={"symbol": exc.symbol},
                    ) from None
                price = debit_limit(min(value.closing_cost_natural, spread.spread.width))
                decisions.append(
                    exit_decision(
                        record.position_id,
                        spread.spread,
                        OrderPurpose.MANUAL_EXIT,
                        price,
                        f"closed by {command.requested_by or 'the user'} at the natural "
                        f"closing debit {-price}",
                        working,
                    )
                )
            ids = kept + await self._place_exits(account, decisions)
        return ClosePositionReply(position_id=record.position_id, exit_order_ids=tuple(ids))

    async def sync_positions(self, command: SyncPositions) -> SyncPositionsReply:
        """Read the broker now and flag what differs (one read: a person asked)."""
        account = command.account_id
        async with self._lock:
            await self._close_filled()  # fills already reported are booked first
            synced_at = self.clock.now()
            findings = await self._diff(account)
            await self._flag(account, findings)
            self._next_sync[account] = synced_at + timedelta(seconds=self._settings.sync_interval_s)
        return SyncPositionsReply(positions=self._views(account, False), synced_at=synced_at)


def _published(record: PositionRecord) -> Published | None:
    """The position's last published valuation, as the book folded it."""
    if record.valued_at is None or record.unrealized_pnl is None or record.dte is None:
        return None
    return Published(
        at=record.valued_at,
        figures=ValuationFigures(
            spreads=record.spread_marks, unrealized_pnl=record.unrealized_pnl, dte=record.dte
        ),
    )
