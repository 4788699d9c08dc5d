"""The execution service's shell: orders to the broker, their lifecycle, automatic exits.

State is `ExecutionState` (the orders of every account and what the reactions decide
from), rebuilt at start by a `Follower` and kept live by it. Decisions come from the
pure core (`services.execution.core`); this module talks to NATS and the broker.

How an order is never lost and never doubled:

1. A decision gets a deterministic order id (from the reservation, the position and
   spread, or the caller's id) and so a deterministic client tag.
2. ``OrderSubmitted`` is published *before* the request leaves. A crash after sending
   therefore always leaves a recorded order that reconciliation looks up by its tag.
3. Sending follows `RetryPolicy`: after a timeout or a 5xx the order is looked up by
   its client tag before any new attempt; an unreachable broker fails at once and
   suspends trading. When the outcome stays unknown the order is left SUBMITTED (never
   declared failed) and the reconciliation poll resolves it once the broker answers.
4. Every broker report (place answer, lookup, account-streamer notification,
   reconciliation poll) goes through `lifecycle_facts` under the order's lock, which
   publishes only what the events so far do not already say.

Reconciliation runs at start-up, after every reconnect of an account stream, while
trading is suspended (as the probe that resumes it), for orders left unanswered, and
for the accounts of a partition this replica takes over from another.

Replicas share the accounts by partition (`FollowingService.partitioned`): a replica
streams, sends, reconciles and answers only for the accounts it `owns`. Handing a
partition over waits for its orders in flight to get their broker answer first, so the
next owner's reconciliation finds them by client tag rather than sending them again.

Reactions (live events only; the follower never re-enacts history): ``RiskReserved`` ->
the opening order; ``ExitOrderPlaced`` -> the exit order. A full fill of an opening
publishes ``PositionOpened`` and the profit targets (``ExitOrderPlaced`` each) and places
them; its first partial fill flags the position (``PositionNeedsAttention``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Sequence
from typing import Any
from uuid import UUID

from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from libs.broker.adapter import BrokerAdapter, CredentialsSource
from libs.broker.credentials import VaultCredentials
from libs.broker.feeds import AccountFeed
from libs.broker.models import BrokerOrder
from libs.broker.settings import BrokerSettings
from libs.broker.streaming import AccountStream, Subscription
from libs.broker.vault import CredentialsVault
from libs.contracts.commands import (
    CancelOrder,
    GetOrder,
    GetOrders,
    OrderListReply,
    OrderReply,
    PlaceExitOrder,
    ReplaceOrderPrice,
)
from libs.contracts.envelope import Causation, Event, new_event_id
from libs.contracts.errors import (
    ErrorKind,
    InvalidState,
    NotFound,
    SenexError,
    ValidationFailed,
)
from libs.contracts.execution import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderLeg,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderSubmitted,
    OrderView,
)
from libs.contracts.partitions import partition_of
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    HeldLeg,
    PositionAttentionCleared,
    PositionNeedsAttention,
    PositionOpened,
)
from libs.contracts.risk import RiskReserved
from libs.contracts.system import TradingResumed, TradingSuspended
from libs.domain.orders import decision_id_of, opening_order_id
from libs.runtime.clock import Clock, new_york_time
from libs.runtime.following import FollowingService
from libs.runtime.market_hours import is_market_open, ny_date
from libs.runtime.runner import HealthReport, ServiceContext
from services.execution.core import (
    Accepted,
    Cancelled,
    Expired,
    Fact,
    Fills,
    InvalidOrder,
    OrderSpec,
    PositionPlan,
    Rejected,
    Replaced,
    RetryPolicy,
    StepAction,
    exit_order,
    lifecycle_facts,
    opening_order,
    plan_position,
    position_id_for,
    profit_targets,
    replacement_order,
)
from services.execution.core.retry import OUTCOME_UNKNOWN
from services.execution.projection import OrderRecord
from services.execution.settings import ExecutionSettings
from services.execution.state import ExecutionState

SERVICE = "execution"

#: Why a working exit is cancelled when a new exit of ``purpose`` supersedes it.
SUPERSEDE_REASON: dict[OrderPurpose, CancelReason] = {
    OrderPurpose.STOP_LOSS: CancelReason.STOP_LOSS,
    OrderPurpose.TIME_EXIT: CancelReason.TIME_EXIT,
    OrderPurpose.MANUAL_EXIT: CancelReason.MANUAL_EXIT,
    OrderPurpose.PROFIT_TARGET: CancelReason.SYSTEM,
}


class _NotYetCancelled(SenexError):
    """The exit being superseded is not confirmed cancelled yet (retried)."""

    KIND = ErrorKind.API_ERROR


class ExecutionService(FollowingService):
    """Places, follows and reconciles orders; opens positions and their profit targets."""

    name = SERVICE

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        settings: ExecutionSettings | None = None,
        broker_settings: BrokerSettings | None = None,
        credentials: CredentialsSource | None = None,
        durable: str = SERVICE,
    ) -> None:
        """``credentials`` replaces the vault (tests); settings default to the environment."""
        super().__init__(SERVICE, clock=clock, durable=durable)
        self._settings_given = settings
        self._broker_settings_given = broker_settings
        self._credentials_given = credentials
        self._state = ExecutionState()
        self._adapter: BrokerAdapter | None = None
        self._policy = RetryPolicy()
        self._settings = ExecutionSettings()
        self._locks: dict[UUID, asyncio.Lock] = {}
        """Per order: applying broker reports (and publishing their consequences)."""
        self._deciding: dict[UUID, asyncio.Lock] = {}
        """Per order: recording the decision (exactly one OrderSubmitted per order id)."""
        self._placing: set[UUID] = set()
        """Orders whose sending loop is running in this process."""
        self._cancel_reasons: dict[UUID, CancelReason] = {}
        self._feeds: dict[str, AccountFeed] = {}
        self._feed_lock = asyncio.Lock()
        self._suspension_lock = asyncio.Lock()
        """Suspending and resuming are check-then-publish: one at a time."""
        self._reconcile_due: set[str] = set()
        """Accounts whose next poll reconciles fully (start-up, reconnect, take-over)."""
        self._reconcile_now = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._task_accounts: dict[asyncio.Task[Any], str] = {}
        """Which account each background task works for (handed over with its partition)."""
        self._loop_task: asyncio.Task[None] | None = None
        #: Seconds from a decision (RiskReserved / ExitOrderPlaced) to its request leaving.
        self.send_latency: list[float] = []

    # --- lifecycle ------------------------------------------------------------------

    @property
    def adapter(self) -> BrokerAdapter:
        """The broker adapter (after start)."""
        if self._adapter is None:
            raise RuntimeError("execution is not started")
        return self._adapter

    @property
    def state(self) -> ExecutionState:
        """What the service knows (read-only use)."""
        return self._state

    async def start(self, ctx: ServiceContext) -> None:
        self._settings = self._settings_given or ExecutionSettings()
        self._policy = RetryPolicy().scaled(self._settings.backoff_scale)
        broker_settings = self._broker_settings_given or BrokerSettings()
        await self.connect(ctx)
        credentials = self._credentials_given
        if credentials is None:
            vault = await CredentialsVault.open(ctx.settings.database_url, broker_settings)
            credentials = VaultCredentials(vault, broker_settings)
        self._adapter = BrokerAdapter(broker_settings, credentials)
        self._init_metrics(ctx)
        await self.follow(self._state.apply, self._react)
        await self.serve(
            {
                GetOrder.VERB: self.get_order,
                GetOrders.VERB: self.get_orders,
                CancelOrder.VERB: self.cancel_order,
                PlaceExitOrder.VERB: self.place_exit_order,
                ReplaceOrderPrice.VERB: self.replace_order_price,
            }
        )
        self._loop_task = asyncio.create_task(self._reconcile_forever(), name="exec-reconcile")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks, *self._feed_tasks()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for feed in self._feeds.values():
            await feed.stream.aclose()
        self._feeds.clear()
        await self.stop_following()  # no reaction may reach the broker once it is closed
        if self._adapter is not None:
            await self._adapter.aclose()
        await self.disconnect()

    def _feed_tasks(self) -> list[asyncio.Task[None]]:
        return [feed.task for feed in self._feeds.values()]

    async def partition_acquired(self, partition: int) -> None:
        """Reconcile the partition's accounts with an order not yet ended (start-up or
        take-over: the previous owner may have died mid-order)."""
        self._reconcile_due |= {
            account
            for account in self._state.accounts()
            if partition_of(account) == partition and self._state.open_orders(account)
        }
        self._reconcile_now.set()

    async def partition_released(self, partition: int, *, lost: bool) -> None:
        """Let the partition's orders in flight get their answer (unless the lease is
        already lost), then drop its account streams."""
        accounts = {a for a in self._state.accounts() if partition_of(a) == partition}
        accounts |= {a for a in self._feeds if partition_of(a) == partition}
        work = [t for t, a in self._task_accounts.items() if a in accounts]
        if work:
            late = set(work)
            if not lost:
                _, late = await asyncio.wait(work, timeout=self._settings.handover_grace_s)
            for task in late:
                self._log.warning("work cut short by the partition hand-over", task=task.get_name())
                task.cancel()
        for account in sorted(accounts & set(self._feeds)):
            feed = self._feeds.pop(account)
            feed.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feed.task
            await feed.stream.aclose()
        self._reconcile_due -= accounts

    async def health(self) -> HealthReport:
        report = await super().health()
        checks = dict(report.checks)
        if self._state.suspended:
            # Reported, not unhealthy: the service is doing its job by refusing orders.
            checks["trading"] = "suspended for " + ", ".join(sorted(self._state.suspended))
        return HealthReport(report.healthy, checks)

    def _init_metrics(self, ctx: ServiceContext) -> None:
        registry = ctx.metrics.registry
        self._m_orders = Counter(
            "senex_orders_total",
            "Order lifecycle events published, by status reached.",
            ["service", "status"],
            registry=registry,
        )
        self._m_retries = Counter(
            "senex_broker_retries_total",
            "Broker order requests retried, by the error kind that caused the retry.",
            ["service", "kind"],
            registry=registry,
        )
        self._m_send = Histogram(
            "senex_order_send_seconds",
            "From the decision (RiskReserved / ExitOrderPlaced) to the broker request leaving.",
            ["service"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=registry,
        )
        self._metrics = ctx.metrics

    def _spawn(self, work: Coroutine[Any, Any, None], name: str, account: str) -> None:
        """Run ``work`` for ``account`` in the background; its failure is logged."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        self._task_accounts[task] = account

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._task_accounts.pop(t, None)
            if not t.cancelled() and t.exception() is not None:
                self._log.error("background work failed", task=name, exc_info=t.exception())

        task.add_done_callback(done)

    # --- publishing -----------------------------------------------------------------

    def _env(self, account_id: str, cause: Causation | None) -> dict[str, Any]:
        links: dict[str, Any] = (
            dict(cause) if cause is not None else {"correlation_id": new_event_id()}
        )
        return {
            "occurred_at": self.clock.now(),
            "producer": SERVICE,
            "account_id": account_id,
            **links,
        }

    def _order_env(self, account_id: str, order_id: UUID) -> dict[str, Any]:
        """Envelope of an order's next event: caused by the order's latest event."""
        return self._env(account_id, self._state.causes.get(order_id))

    async def _emit(self, event: Event) -> None:
        await self.bus.publish(event)
        self._state.apply(event)
        if isinstance(
            event,
            OrderSubmitted
            | OrderAccepted
            | OrderPartiallyFilled
            | OrderFilled
            | OrderRejected
            | OrderCancelled
            | OrderExpired
            | OrderReplaced,
        ):
            record = self._state.order(event.order_id)
            if record is not None:
                self._m_orders.labels(SERVICE, record.status.value).inc()

    def _lock(self, order_id: UUID) -> asyncio.Lock:
        lock = self._locks.get(order_id)
        if lock is None:
            lock = self._locks[order_id] = asyncio.Lock()
        return lock

    def _decision(self, order_id: UUID) -> asyncio.Lock:
        # Reactions, commands and reconciliation may decide the same order at once (an
        # ExitOrderPlaced published here comes back through the follower while its
        # OrderSubmitted is being published): the check and the record are one step.
        lock = self._deciding.get(order_id)
        if lock is None:
            lock = self._deciding[order_id] = asyncio.Lock()
        return lock

    # --- reactions --------------------------------------------------------------------

    async def _react(self, event: Event) -> None:
        if isinstance(event, RiskReserved):
            await self._on_reserved(event)
        elif isinstance(event, ExitOrderPlaced):
            await self._place_exit(event.account_id, event)

    async def _on_reserved(self, event: RiskReserved) -> None:
        """The opening order of an approved, reserved suggestion (once per reservation)."""
        decided = time.perf_counter()
        account = event.account_id
        order_id = opening_order_id(event.reservation_id)
        async with self._decision(order_id):
            record = self._state.order(order_id)
            if record is not None:
                self._resume_if_unanswered(account, record)
                return
            spec = self._opening_spec(event)
            if spec is None:
                return
            await self._submit(account, spec, event.causation())
        now = self.clock.now()
        if not is_market_open(now):
            await self._fail(
                account,
                order_id,
                ErrorKind.MARKET_CLOSED,
                f"the market is closed ({new_york_time(now):%Y-%m-%d %H:%M} New York): "
                "orders are only sent in regular market hours",
            )
            return
        self._start_drive(account, order_id, resume=False, decided=decided)

    def _opening_spec(self, event: RiskReserved) -> OrderSpec | None:
        """The opening order of a reservation, or None (logged) when none can be built."""
        order_id = opening_order_id(event.reservation_id)
        if event.reservation_id in self._state.released:
            self._log.info("reservation already released; no order", order_id=str(order_id))
            return None
        suggestion = self._state.suggestions.get(event.suggestion_id)
        if suggestion is None:
            # Nothing to build the legs from: the reservation is released when the
            # suggestion expires. Logged loudly, counted.
            self._log.error(
                "RiskReserved for an unknown suggestion; no order placed",
                suggestion_id=str(event.suggestion_id),
                reservation_id=str(event.reservation_id),
            )
            self._metrics.error(ErrorKind.NOT_FOUND.value)
            return None
        try:
            return opening_order(
                suggestion, event.limit_credit, reservation_id=event.reservation_id
            )
        except InvalidOrder as exc:
            self._log.error("cannot build the opening order", error=str(exc))
            self._metrics.error(ErrorKind.VALIDATION_ERROR.value)
            return None

    async def _submit(self, account: str, spec: OrderSpec, cause: Causation) -> None:
        """Record the decision (before any request leaves) and make sure its account is
        followed."""
        await self._emit(OrderSubmitted(**self._env(account, cause), **spec.submitted_fields()))
        if account not in self._feeds:
            self._spawn(self._ensure_feed(account), f"exec-feed-{account}", account)

    def _resume_if_unanswered(self, account: str, record: OrderRecord) -> None:
        """Resolve an order recorded as sent without a broker answer (look up, then send)."""
        if (
            record.status is OrderStatus.SUBMITTED
            and record.broker_order_id is None
            and record.order_id not in self._placing
        ):
            self._start_drive(account, record.order_id, resume=True)

    # --- sending ----------------------------------------------------------------------

    def _start_drive(
        self, account: str, order_id: UUID, *, resume: bool, decided: float | None = None
    ) -> None:
        if order_id in self._placing:
            return
        self._placing.add(order_id)

        async def drive() -> None:
            try:
                await self._drive(account, order_id, resume=resume, decided=decided)
            finally:
                self._placing.discard(order_id)

        self._spawn(drive(), f"exec-send-{order_id}", account)

    async def _drive(
        self, account: str, order_id: UUID, *, resume: bool, decided: float | None
    ) -> None:
        """Get one recorded order to the broker exactly once (see the module docstring).

        ``resume``: the order may already have been sent (by an earlier process or a
        request whose answer was lost), so it is looked up by its client tag first.
        """
        maybe_sent = resume
        need_lookup = resume
        attempt = 0
        while True:
            record = self._state.order(order_id)
            if (
                record is None
                or record.status is not OrderStatus.SUBMITTED
                or record.broker_order_id is not None
            ):
                return  # a report (stream, lookup) already told where it stands
            attempt += 1
            try:
                if need_lookup:
                    found = await self.adapter.find_order_by_client_tag(account, record.client_tag)
                    if found is not None:
                        self._log.info(
                            "order found at the broker by its client tag",
                            order_id=str(order_id),
                            broker_order_id=found.broker_order_id,
                        )
                        await self._broker_answered(account)
                        await self._sent(account, record, found)
                        return
                    need_lookup = False
                blocked = await self._precheck(account, record)
                if blocked is not None:
                    await self._fail(account, order_id, *blocked)
                    return
                if decided is not None and attempt == 1:
                    elapsed = time.perf_counter() - decided
                    self._m_send.labels(SERVICE).observe(elapsed)
                    self.send_latency.append(elapsed)
                placed = await self._send(account, record)
            except SenexError as exc:
                step = self._policy.after_failure(attempt, exc.kind)
                if exc.kind in OUTCOME_UNKNOWN:
                    maybe_sent = True
                    need_lookup = True
                self._log.warning(
                    "broker request failed",
                    order_id=str(order_id),
                    attempt=attempt,
                    kind=exc.kind.value,
                    error=exc.message,
                    next=step.action.value,
                )
                self._metrics.error(exc.kind.value)
                if step.action is StepAction.SUSPEND:
                    await self._suspend(account, exc)
                    if maybe_sent:
                        self._log.warning(
                            "order outcome unknown; left for reconciliation",
                            order_id=str(order_id),
                        )
                        return
                    await self._fail(account, order_id, exc.kind, exc.message)
                    return
                if step.action is StepAction.GIVE_UP:
                    await self._give_up(account, order_id, exc, attempt, maybe_sent=maybe_sent)
                    return
                if step.action is StepAction.REFRESH_THEN_RETRY:
                    self.adapter.expire_session(account)
                self._m_retries.labels(SERVICE, exc.kind.value).inc()
                await asyncio.sleep(step.delay_s)
                continue
            await self._broker_answered(account)
            await self._sent(account, record, placed)
            return

    async def _give_up(
        self, account: str, order_id: UUID, exc: SenexError, attempts: int, *, maybe_sent: bool
    ) -> None:
        """Final failure; when the broker may hold the order, only after a last lookup."""
        if maybe_sent:
            record = self._state.order(order_id)
            assert record is not None
            try:
                found = await self.adapter.find_order_by_client_tag(account, record.client_tag)
            except SenexError as lookup_error:
                self._log.warning(
                    "order outcome unknown; left for reconciliation",
                    order_id=str(order_id),
                    kind=lookup_error.kind.value,
                    error=lookup_error.message,
                )
                return
            if found is not None:
                await self._sent(account, record, found)
                return
        message = exc.message
        if attempts > 1:
            message = f"gave up after {attempts} attempts: {exc.message}"
        await self._fail(account, order_id, exc.kind, message, exc.details.get("broker_order_id"))
        if exc.kind is ErrorKind.AUTH_FAILED:
            await self._suspend(account, exc)

    async def _precheck(self, account: str, record: OrderRecord) -> tuple[ErrorKind, str] | None:
        """Why the order must not be sent now, if so; clears a superseded exit first."""
        now = self.clock.now()
        if record.purpose is OrderPurpose.OPEN:
            if not is_market_open(now):
                return (
                    ErrorKind.MARKET_CLOSED,
                    "the market closed before the order could be sent",
                )
            if ny_date(record.submitted_at) != ny_date(now):
                # A DAY order decided in an earlier session, never answered: its price
                # is stale, so it is not sent now (the reservation is released).
                return (
                    ErrorKind.MARKET_CLOSED,
                    f"the session of {ny_date(record.submitted_at)} it was approved for ended",
                )
        if record.replaces_order_id is not None:
            old = self._state.order(record.replaces_order_id)
            if old is None or old.status.is_terminal or old.broker_order_id is None:
                status = "unknown" if old is None else old.status.value
                return (ErrorKind.INVALID_STATE, f"the order it re-prices is {status}")
        decided = self._state.exits.get(record.order_id)
        if decided is not None and decided.replaces_order_id is not None:
            superseded = self._state.order(decided.replaces_order_id)
            if superseded is not None and not superseded.status.is_terminal:
                if superseded.broker_order_id is None:
                    raise _NotYetCancelled(
                        f"the exit {superseded.order_id} it supersedes is not acknowledged yet"
                    )
                await self._cancel_at_broker(
                    account, superseded, SUPERSEDE_REASON.get(record.purpose, CancelReason.SYSTEM)
                )
                superseded = self._state.order(superseded.order_id)
                if superseded is not None and not superseded.status.is_terminal:
                    raise _NotYetCancelled(
                        f"the exit {superseded.order_id} it supersedes is still "
                        f"{superseded.status.value}"
                    )
            if superseded is not None and superseded.status is OrderStatus.FILLED:
                return (
                    ErrorKind.INVALID_STATE,
                    f"the spread's exit {superseded.order_id} filled first",
                )
        return None

    async def _send(self, account: str, record: OrderRecord) -> BrokerOrder:
        request = record.request()
        if record.replaces_order_id is not None:
            old = self._state.order(record.replaces_order_id)
            if old is None or old.broker_order_id is None:  # _precheck refused this already
                raise InvalidState(f"order {record.order_id} has no working order to re-price")
            return await self.adapter.replace_order(account, old.broker_order_id, request)
        return await self.adapter.place_order(account, request)

    async def _sent(self, account: str, record: OrderRecord, report: BrokerOrder) -> None:
        """The broker holds ``record`` as ``report``: a replacement ends its original."""
        if record.replaces_order_id is not None:
            old_id = record.replaces_order_id
            async with self._lock(old_id):
                old = self._state.order(old_id)
                if old is not None and not old.status.is_terminal:
                    await self._emit(
                        OrderReplaced(
                            **self._order_env(account, old_id),
                            order_id=old_id,
                            replacement_order_id=record.order_id,
                            broker_order_id=old.broker_order_id,
                        )
                    )
        await self._report(account, record.order_id, report)

    async def _fail(
        self,
        account: str,
        order_id: UUID,
        kind: ErrorKind,
        reason: str,
        broker_order_id: str | None = None,
    ) -> None:
        """The order never got (or stays) to the broker: OrderRejected with ``kind``."""
        async with self._lock(order_id):
            record = self._state.order(order_id)
            if record is None or record.status.is_terminal:
                return
            await self._emit(
                OrderRejected(
                    **self._order_env(account, order_id),
                    order_id=order_id,
                    broker_order_id=broker_order_id or record.broker_order_id,
                    kind=kind,
                    reason=reason,
                )
            )
            self._log.warning(
                "order failed", order_id=str(order_id), kind=kind.value, reason=reason
            )
            await self._exit_failed(account, order_id, reason)

    # --- suspension -----------------------------------------------------------------

    async def _suspend(self, account: str, exc: SenexError) -> None:
        async with self._suspension_lock:
            if account in self._state.suspended:
                return
            kind = exc.kind if exc.kind is ErrorKind.AUTH_FAILED else ErrorKind.BROKER_UNAVAILABLE
            await self._emit(
                TradingSuspended(
                    **self._env(account, None),
                    reason=kind,
                    message=f"trading suspended: {exc.message}",
                )
            )
        self._log.error("trading suspended", account_id=account, kind=kind.value)

    async def _broker_answered(self, account: str) -> None:
        if account not in self._state.suspended:
            return
        async with self._suspension_lock:
            suspended = self._state.suspended.get(account)
            if suspended is None:
                return
            await self._emit(
                TradingResumed(
                    **self._env(account, suspended.causation()),
                    message="the broker answers again; trading resumed",
                )
            )
        self._log.info("trading resumed", account_id=account)

    # --- broker reports -----------------------------------------------------------------

    async def _report(self, account: str, order_id: UUID, report: BrokerOrder) -> None:
        """Publish what ``report`` adds to the order, then its consequences."""
        async with self._lock(order_id):
            record = self._state.order(order_id)
            if record is None:
                self._log.warning("report for an unknown order", order_id=str(order_id))
                return
            for fact in lifecycle_facts(record.status, record.fills, report):
                await self._publish_fact(account, record, fact)
            record = self._state.order(order_id)
            assert record is not None
            if record.purpose is OrderPurpose.OPEN:
                if record.status is OrderStatus.FILLED:
                    await self._ensure_position(account, record)
                elif record.fills:
                    await self._flag_partial(account, record)

    async def _publish_fact(self, account: str, record: OrderRecord, fact: Fact) -> None:
        order_id = record.order_id
        env = self._order_env(account, order_id)
        event: Event
        if isinstance(fact, Accepted):
            event = OrderAccepted(**env, order_id=order_id, broker_order_id=fact.broker_order_id)
        elif isinstance(fact, Fills):
            kind = OrderFilled if fact.complete else OrderPartiallyFilled
            event = kind(
                **env, order_id=order_id, broker_order_id=fact.broker_order_id, legs=fact.fills
            )
        elif isinstance(fact, Rejected):
            event = OrderRejected(
                **env,
                order_id=order_id,
                broker_order_id=fact.broker_order_id,
                kind=ErrorKind.ORDER_REJECTED,
                reason=fact.reason,
            )
        elif isinstance(fact, Cancelled):
            event = OrderCancelled(
                **env,
                order_id=order_id,
                broker_order_id=fact.broker_order_id,
                reason=self._cancel_reasons.pop(order_id, CancelReason.BROKER),
                message=fact.message,
            )
        elif isinstance(fact, Expired):
            event = OrderExpired(**env, order_id=order_id, broker_order_id=fact.broker_order_id)
        else:
            event = self._replaced_event(env, record, fact)
        await self._emit(event)
        self._log.info("order event", order_id=str(order_id), event_type=event.type)
        if isinstance(fact, Rejected):
            await self._exit_failed(account, order_id, fact.reason)

    def _replaced_event(self, env: dict[str, Any], record: OrderRecord, fact: Replaced) -> Event:
        replacement = next(
            (
                o
                for o in self._state.book(env["account_id"]).orders.values()
                if o.replaces_order_id == record.order_id
            ),
            None,
        )
        if replacement is None:
            return OrderCancelled(
                **env,
                order_id=record.order_id,
                broker_order_id=fact.broker_order_id,
                reason=CancelReason.BROKER,
                message=(
                    f"replaced at the broker outside Senex by order "
                    f"{fact.replacement_broker_order_id}"
                ),
            )
        return OrderReplaced(
            **env,
            order_id=record.order_id,
            replacement_order_id=replacement.order_id,
            broker_order_id=fact.broker_order_id,
        )

    async def _exit_failed(self, account: str, order_id: UUID, reason: str) -> None:
        """A rejected exit leaves its spread without a working exit: flag the position."""
        record = self._state.order(order_id)
        if record is None or not record.purpose.is_exit or record.position_id is None:
            return
        await self._emit(
            PositionNeedsAttention(
                **self._order_env(account, order_id),
                position_id=record.position_id,
                underlying=record.underlying,
                reason=AttentionReason.ORDER_FAILED,
                message=(
                    f"the {record.purpose.value} order for {record.spread_kind} failed: {reason}"
                ),
                order_id=order_id,
                app_managed=True,
            )
        )

    # --- positions and profit targets -------------------------------------------------

    async def _flag_partial(self, account: str, record: OrderRecord) -> None:
        """At the first partial fill of an opening: flag the position, not app managed."""
        position_id = position_id_for(record.order_id)
        if position_id in self._state.partial_flags:
            return
        held: dict[str, int] = {}
        for fill in record.fills.values():
            sign = 1 if fill.action.is_buy else -1
            held[fill.symbol] = held.get(fill.symbol, 0) + sign * fill.quantity
        filled = ", ".join(
            f"{record.filled_quantity(leg.symbol)}/{leg.quantity} {leg.symbol}"
            for leg in record.legs
        )
        await self._emit(
            PositionNeedsAttention(
                **self._order_env(account, record.order_id),
                position_id=position_id,
                underlying=record.underlying,
                reason=AttentionReason.PARTIAL_FILL,
                message=(
                    f"the opening order filled partly ({filled}); not app managed, "
                    "no automatic leg-in"
                ),
                order_id=record.order_id,
                app_managed=False,
                held_legs=tuple(
                    HeldLeg(symbol=symbol, quantity=quantity)
                    for symbol, quantity in held.items()
                    if quantity
                ),
            )
        )

    async def _ensure_position(self, account: str, record: OrderRecord) -> None:
        """PositionOpened for a filled opening, then its profit targets (idempotent).

        The caller holds the opening order's lock.
        """
        position_id = position_id_for(record.order_id)
        opened = self._state.positions.get(position_id)
        announce = opened is None
        if opened is None:
            if record.suggestion_id is None:
                self._log.error(
                    "a filled opening without a suggestion", order_id=str(record.order_id)
                )
                return
            try:
                plan = plan_position(record.legs, tuple(record.fills.values()))
            except (InvalidOrder, ValidationError) as exc:
                await self._unreadable_fill(account, record, position_id, str(exc))
                return
            opened = PositionOpened(
                **self._order_env(account, record.order_id),
                position_id=position_id,
                suggestion_id=record.suggestion_id,
                opening_order_id=record.order_id,
                underlying=plan.underlying,
                expiration=plan.expiration,
                width=plan.width,
                spreads=plan.spreads,
                total_entry_credit=plan.total_entry_credit,
                max_risk=plan.max_risk,
            )
            await self._emit(opened)
            self._log.info(
                "position opened",
                position_id=str(position_id),
                total_entry_credit=str(plan.total_entry_credit),
            )
        if position_id in self._state.partial_flags and position_id not in self._state.cleared:
            await self._emit(
                PositionAttentionCleared(
                    **self._env(account, opened.causation()),
                    position_id=position_id,
                    message="the opening order filled completely; the position is app managed",
                )
            )
        await self._ensure_profit_targets(account, opened, announce=announce)

    async def _unreadable_fill(
        self, account: str, record: OrderRecord, position_id: UUID, error: str
    ) -> None:
        """A filled opening whose fills make no Trident: a human looks (flagged once)."""
        if position_id in self._state.mismatches:
            return  # flagged already (a poll finds the same fills again)
        self._log.error(
            "cannot derive the position from the fills", order_id=str(record.order_id), error=error
        )
        self._metrics.error(ErrorKind.INTERNAL_ERROR.value)
        await self._emit(
            PositionNeedsAttention(
                **self._order_env(account, record.order_id),
                position_id=position_id,
                underlying=record.underlying,
                reason=AttentionReason.BROKER_MISMATCH,
                message=f"the opening order filled but its fills make no Trident: {error}",
                order_id=record.order_id,
                app_managed=False,
            )
        )

    async def _ensure_profit_targets(
        self, account: str, opened: PositionOpened, *, announce: bool = False
    ) -> None:
        plan = PositionPlan(
            underlying=opened.underlying,
            expiration=opened.expiration,
            width=opened.width,
            spreads=opened.spreads,
            total_entry_credit=opened.total_entry_credit,
            max_risk=opened.max_risk,
        )
        exits, skipped = profit_targets(plan, opened.position_id)
        for kind, why in skipped if announce else ():
            self._log.warning(
                "no profit target", position_id=str(opened.position_id), kind=kind, why=why
            )
        for planned in exits:
            order = planned.order
            decided = self._state.exits.get(order.order_id)
            if decided is None:
                decided = ExitOrderPlaced(
                    **self._env(account, opened.causation()),
                    position_id=opened.position_id,
                    spread_kind=planned.spread_kind,
                    order_id=order.order_id,
                    purpose=order.purpose,
                    legs=order.legs,
                    limit_price=order.limit_price,
                    time_in_force=order.time_in_force,
                    reason=planned.reason,
                )
                await self._emit(decided)
            await self._place_exit(account, decided)

    async def _place_exit(self, account: str, decided: ExitOrderPlaced) -> None:
        """Record and send the exit ``decided`` (once per order id)."""
        started = time.perf_counter()
        async with self._decision(decided.order_id):
            record = self._state.order(decided.order_id)
            if record is not None:
                self._resume_if_unanswered(account, record)
                return
            position = self._state.positions.get(decided.position_id)
            underlying = (
                position.underlying if position is not None else decided.legs[0].symbol.root
            )
            try:
                spec = exit_order(
                    order_id=decided.order_id,
                    underlying=underlying,
                    position_id=decided.position_id,
                    spread_kind=decided.spread_kind,
                    purpose=decided.purpose,
                    legs=decided.legs,
                    limit_price=decided.limit_price,
                )
            except InvalidOrder as exc:
                self._log.error(
                    "exit order refused", order_id=str(decided.order_id), error=str(exc)
                )
                await self._emit(
                    PositionNeedsAttention(
                        **self._env(account, decided.causation()),
                        position_id=decided.position_id,
                        underlying=underlying,
                        reason=AttentionReason.ORDER_FAILED,
                        message=f"the {decided.purpose.value} exit could not be placed: {exc}",
                        order_id=decided.order_id,
                        app_managed=True,
                    )
                )
                return
            await self._submit(account, spec, decided.causation())
        self._start_drive(account, spec.order_id, resume=False, decided=started)

    # --- cancelling -----------------------------------------------------------------

    async def _cancel_at_broker(
        self, account: str, record: OrderRecord, reason: CancelReason
    ) -> None:
        """Ask the broker to cancel, then record what its order says now."""
        if record.broker_order_id is None:
            raise InvalidState(f"order {record.order_id} is not acknowledged by the broker yet")
        self._cancel_reasons[record.order_id] = reason
        try:
            await self.adapter.cancel_order(account, record.broker_order_id)
        except SenexError as exc:
            if exc.kind not in (ErrorKind.ORDER_REJECTED, ErrorKind.VALIDATION_ERROR):
                raise
            # Not cancellable any more (filled, already ended): the status below says why.
            self._log.info(
                "broker refused the cancel", order_id=str(record.order_id), error=exc.message
            )
        report = await self.adapter.get_order(account, record.broker_order_id)
        await self._report(account, record.order_id, report)

    # --- account streams and reconciliation ---------------------------------------------

    async def _ensure_feed(self, account: str) -> None:
        async with self._feed_lock:
            if account in self._feeds or not self.owns(account):
                return  # followed already, or handed to another replica meanwhile
            session = await self.adapter.session_for(account)
            stream = AccountStream(account, session, clock=self.clock)
            orders = stream.orders()
            stream.start()
            task = asyncio.create_task(self._pump(account, orders), name=f"exec-orders-{account}")
            self._feeds[account] = AccountFeed(stream, task)

    async def _pump(self, account: str, orders: Subscription[BrokerOrder]) -> None:
        async for report in orders:
            try:
                await self._on_notification(account, report)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad notification must not end the feed; logged
                self._log.exception(
                    "order notification failed", broker_order_id=report.broker_order_id
                )

    async def _on_notification(self, account: str, report: BrokerOrder) -> None:
        order_id = decision_id_of(report.client_tag or "")
        if order_id is None or self._state.order(order_id) is None:
            return  # not an order of ours (placed outside Senex)
        await self._report(account, order_id, report)

    async def _reconcile_forever(self) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next poll tries again; logged with the trace
                self._log.exception("reconciliation failed")
            # The next poll, or sooner when a partition is taken over.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._reconcile_now.wait(), self._settings.reconcile_interval_s
                )
            self._reconcile_now.clear()

    async def reconcile(self) -> None:
        """One poll: full reconciliation where due, unanswered orders, local gaps."""
        for account, feed in self._feeds.items():
            if feed.reconnected():
                self._reconcile_due.add(account)
        due = {a for a in self._reconcile_due | set(self._state.suspended) if self.owns(a)}
        for account in sorted(due):
            if not self.owns(account):
                continue  # handed over while an earlier account was reconciled
            try:
                await self.reconcile_account(account)
            except SenexError as exc:
                self._log.warning(
                    "reconciliation with the broker failed",
                    account_id=account,
                    kind=exc.kind.value,
                    error=exc.message,
                )
                if exc.kind is ErrorKind.BROKER_UNAVAILABLE:
                    await self._suspend(account, exc)
            else:
                self._reconcile_due.discard(account)
        for account in self._state.accounts():
            if not self.owns(account):
                continue
            for record in self._state.open_orders(account):
                self._resume_if_unanswered(account, record)
            await self._fill_gaps(account)

    async def reconcile_account(self, account: str) -> None:
        """Compare every open order of ``account`` with the broker; publish what's new."""
        if account not in self._feeds:
            await self._ensure_feed(account)
        live = await self.adapter.get_live_orders(account)
        await self._broker_answered(account)
        seen: set[UUID] = set()
        for report in live:
            order_id = decision_id_of(report.client_tag or "")
            if order_id is None or self._state.order(order_id) is None:
                continue
            seen.add(order_id)
            await self._report(account, order_id, report)
        for record in self._state.open_orders(account):
            if record.order_id in seen or record.order_id in self._placing:
                continue
            if record.broker_order_id is not None:
                report = await self.adapter.get_order(account, record.broker_order_id)
                await self._report(account, record.order_id, report)
            else:
                self._start_drive(account, record.order_id, resume=True)
        self._log.info("reconciled", account_id=account, live=len(live), ours=len(seen))

    async def _fill_gaps(self, account: str) -> None:
        """Consequences a crash may have cut short: positions, profit targets, exits."""
        for record in list(self._state.book(account).orders.values()):
            if record.purpose is OrderPurpose.OPEN and record.status is OrderStatus.FILLED:
                async with self._lock(record.order_id):
                    await self._ensure_position(account, record)
        for decided in list(self._state.exits.values()):
            if decided.account_id == account and self._state.order(decided.order_id) is None:
                await self._place_exit(account, decided)

    # --- commands -------------------------------------------------------------------

    def _record(self, account: str, order_id: UUID) -> OrderRecord:
        record = self._state.book(account).orders.get(order_id)
        if record is None:
            raise NotFound(
                f"order {order_id} not found for account {account}",
                details={"order_id": str(order_id)},
            )
        return record

    def view(self, record: OrderRecord) -> OrderView:
        """The query form of an order; a filled opening names the position it opened."""
        position_id = record.position_id
        if position_id is None and record.purpose is OrderPurpose.OPEN:
            opened = position_id_for(record.order_id)
            position_id = opened if opened in self._state.positions else None
        return OrderView(
            order_id=record.order_id,
            client_tag=record.client_tag,
            status=record.status,
            purpose=record.purpose,
            underlying=record.underlying,
            legs=record.legs,
            limit_price=record.limit_price,
            time_in_force=record.time_in_force,
            broker_order_id=record.broker_order_id,
            suggestion_id=record.suggestion_id,
            position_id=position_id,
            spread_kind=record.spread_kind,
            fills=tuple(record.fills.values()),
            submitted_at=record.submitted_at,
            updated_at=record.updated_at,
            reason=record.reason,
            replaced_by_order_id=record.replaced_by_order_id,
        )

    async def get_order(self, command: GetOrder) -> OrderReply:
        """One order of the account."""
        return OrderReply(order=self.view(self._record(command.account_id, command.order_id)))

    async def get_orders(self, command: GetOrders) -> OrderListReply:
        """The account's orders, newest first."""
        records = [
            r
            for r in self._state.book(command.account_id).orders.values()
            if not command.open_only or not r.status.is_terminal
        ]
        records.sort(key=lambda r: r.submitted_at, reverse=True)
        return OrderListReply(orders=tuple(self.view(r) for r in records))

    async def cancel_order(self, command: CancelOrder) -> OrderReply:
        """Cancel a working order; the reply shows it as the broker reports it now."""
        record = self._record(command.account_id, command.order_id)
        if record.status.is_terminal:
            raise InvalidState(f"order {record.order_id} is {record.status.value}")
        if record.broker_order_id is None:
            raise InvalidState(
                f"order {record.order_id} is still being sent to the broker; try again shortly"
            )
        try:
            await self._cancel_at_broker(command.account_id, record, command.reason)
        except SenexError as exc:
            if exc.kind is ErrorKind.BROKER_UNAVAILABLE:
                await self._suspend(command.account_id, exc)
            raise
        return OrderReply(order=self.view(self._record(command.account_id, command.order_id)))

    async def place_exit_order(self, command: PlaceExitOrder) -> OrderReply:
        """Record the monitor's exit decision (ExitOrderPlaced) and place it (once)."""
        account = command.account_id
        async with self._decision(command.order_id):
            decided = await self._exit_decision(command)
        await self._place_exit(account, decided)
        return OrderReply(order=self.view(self._record(account, command.order_id)))

    async def _exit_decision(self, command: PlaceExitOrder) -> ExitOrderPlaced:
        """The command's ExitOrderPlaced: published now, or the one already recorded."""
        account = command.account_id
        decided = self._state.exits.get(command.order_id)
        if decided is None:
            position = self._state.positions.get(command.position_id)
            underlying = (
                position.underlying if position is not None else command.legs[0].symbol.root
            )
            try:
                exit_order(
                    order_id=command.order_id,
                    underlying=underlying,
                    position_id=command.position_id,
                    spread_kind=command.spread_kind,
                    purpose=command.purpose,
                    legs=command.legs,
                    limit_price=command.limit_price,
                )
                decided = ExitOrderPlaced(
                    **self._env(account, command.causation()),
                    position_id=command.position_id,
                    spread_kind=command.spread_kind,
                    order_id=command.order_id,
                    purpose=command.purpose,
                    legs=command.legs,
                    limit_price=command.limit_price,
                    replaces_order_id=command.replaces_order_id,
                    reason=command.reason,
                )
            except (InvalidOrder, ValidationError) as exc:
                raise ValidationFailed(f"invalid exit order: {exc}", field="legs") from None
            await self._emit(decided)
        elif decided.account_id != account:
            raise NotFound(f"order {command.order_id} not found for account {account}")
        return decided

    async def replace_order_price(self, command: ReplaceOrderPrice) -> OrderReply:
        """Re-price a working closing order as a new decision (once per replacement id)."""
        account = command.account_id
        async with self._decision(command.replacement_order_id):
            existing = self._state.book(account).orders.get(command.replacement_order_id)
            if existing is not None:
                return OrderReply(order=self.view(existing))
            spec = self._replacement(command)
            await self._submit(account, spec, command.causation())
        self._start_drive(account, spec.order_id, resume=False, decided=time.perf_counter())
        return OrderReply(order=self.view(self._record(account, spec.order_id)))

    def _replacement(self, command: ReplaceOrderPrice) -> OrderSpec:
        account = command.account_id
        old = self._record(account, command.order_id)
        if not old.purpose.is_exit:
            raise InvalidState("only closing orders are re-priced")
        if old.status not in (OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED) or (
            old.broker_order_id is None
        ):
            raise InvalidState(f"order {old.order_id} is {old.status.value}: nothing to re-price")
        try:
            spec = replacement_order(
                original=_spec_of(old),
                order_id=command.replacement_order_id,
                limit_price=command.limit_price,
                remaining=_remaining_legs(old),
            )
        except InvalidOrder as exc:
            raise ValidationFailed(str(exc), field="limit_price") from None
        return spec


def _spec_of(record: OrderRecord) -> OrderSpec:
    return OrderSpec(
        order_id=record.order_id,
        purpose=record.purpose,
        underlying=record.underlying,
        legs=record.legs,
        limit_price=record.limit_price,
        time_in_force=record.time_in_force,
        suggestion_id=record.suggestion_id,
        reservation_id=record.reservation_id,
        position_id=record.position_id,
        spread_kind=record.spread_kind,
        replaces_order_id=record.replaces_order_id,
    )


def _remaining_legs(record: OrderRecord) -> Sequence[OrderLeg]:
    """The legs still unfilled (the broker re-prices only what is left)."""
    legs = [
        OrderLeg(
            symbol=leg.symbol,
            action=leg.action,
            quantity=leg.quantity - record.filled_quantity(leg.symbol),
        )
        for leg in record.legs
        if leg.quantity > record.filled_quantity(leg.symbol)
    ]
    return legs or list(record.legs)
