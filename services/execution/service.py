"""The execution service's shell: orders to the broker, their lifecycle, automatic exits.

State is `ExecutionState` (the orders of every account and what the reactions decide
from), the fold of the business stream in stream order (a `Follower`); execution never
applies its own events, it publishes them and waits until the fold has passed them
(docs/decisions/0002-state-is-the-stream-fold.md). Decisions come from the pure core
(`services.execution.core`); the collaborating objects built by `bootstrap` talk to
NATS and the broker; this module starts, hands over and stops them.

How an order is never lost and never doubled:

1. A decision gets a deterministic order id (from the reservation, the position and
   spread, or the caller's id) and so a deterministic client tag.
2. ``OrderSubmitted`` is published *before* the request leaves (`recording`). A crash
   after sending therefore always leaves a recorded order that reconciliation looks up
   by its tag.
3. Sending follows `RetryPolicy` (`sending`): after a timeout or a 5xx the order is
   looked up by its client tag before any new attempt; an unreachable broker fails at
   once and suspends trading (`suspension`). When the outcome stays unknown the order
   is left SUBMITTED (never declared failed) and the reconciliation poll resolves it
   once the broker answers.
4. Every broker report (place answer, lookup, account-streamer notification,
   reconciliation poll) goes through `lifecycle_facts` under the order's lock
   (`reporting`), which publishes only what the events so far do not already say.

Reconciliation (`reconciliation`) runs at start-up, after every reconnect of an account
stream, while trading is suspended (as the probe that resumes it), for orders left
unanswered, and for the accounts of a partition this replica takes over from another.

Replicas share the accounts by partition (`FollowingService.partitioned`): a replica
streams, sends, reconciles and answers only for the accounts it `owns`. Handing a
partition over waits for its orders in flight to get their broker answer first, so the
next owner's reconciliation finds them by client tag rather than sending them again.

Reactions (live events only; the follower never re-enacts history): ``RiskReserved`` ->
the opening order (`opening`); ``ExitOrderPlaced`` -> the exit order (`exits`). A full
fill of an opening publishes ``PositionOpened`` and the profit targets
(``ExitOrderPlaced`` each) and places them; its first partial fill flags the position
(``PositionNeedsAttention``) (`positions`).
"""

from __future__ import annotations

import asyncio

from libs.runtime.following import FollowingService
from libs.runtime.runner import HealthReport, ServiceContext
from libs.runtime.tasks import cancel_and_wait
from services.execution.bootstrap import Execution, ExecutionDependencies, assemble
from services.execution.metrics import SERVICE
from services.execution.reconciliation import accounts_in
from services.execution.state import ExecutionState


class ExecutionService(FollowingService):
    """Places, follows and reconciles orders; opens positions and their profit targets."""

    name = SERVICE

    def __init__(self, deps: ExecutionDependencies, *, durable: str = SERVICE) -> None:
        """``deps``: what the caller chooses (clock, settings, broker wiring);
        ``durable`` names the live consumers."""
        super().__init__(SERVICE, clock=deps.clock, durable=durable)
        self._deps = deps
        self._parts: Execution | None = None
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def _execution(self) -> Execution:
        if self._parts is None:
            raise RuntimeError("execution is not started")
        return self._parts

    @property
    def state(self) -> ExecutionState:
        """What the service knows (read-only use; after start)."""
        return self._execution.state

    @property
    def send_latency(self) -> list[float]:
        """Seconds from each decision to its broker request leaving (after start)."""
        return self._execution.metrics.send_latency

    async def start(self, ctx: ServiceContext) -> None:
        await self.connect(ctx)
        parts = self._parts = await assemble(self._deps, ctx, self)
        await self.follow(parts.state.apply, parts.reactions)
        await self.serve(parts.commands.handlers())
        self._loop_task = asyncio.create_task(parts.reconciler.run(), name="exec-reconcile")

    async def stop(self) -> None:
        parts = self._parts
        if parts is not None:
            # Everything at once: no background work may start more once this awaits.
            loop = [self._loop_task] if self._loop_task is not None else []
            await cancel_and_wait([*loop, *parts.background.tasks(), *parts.feeds.tasks()])
            await parts.feeds.close()
        await self.stop_following()  # no reaction may reach the broker once it is closed
        if parts is not None:
            await parts.background.close()  # what a last reaction started meanwhile
            await parts.adapter.aclose()
        await self.disconnect()

    async def partition_acquired(self, partition: int) -> None:
        """Reconcile the partition's accounts with an order not yet ended (start-up or
        take-over: the previous owner may have died mid-order)."""
        self._execution.reconciler.take_over(partition)

    async def partition_released(self, partition: int, *, lost: bool) -> None:
        """Let the partition's orders in flight get their answer (unless the lease is
        already lost), then drop its account streams."""
        parts = self._execution
        accounts = accounts_in([*parts.state.accounts(), *parts.feeds.accounts()], partition)
        grace = None if lost else parts.settings.handover_grace_s
        await parts.background.hand_over(accounts, grace_s=grace)
        for account in sorted(accounts & parts.feeds.accounts()):
            await parts.feeds.drop(account)
        parts.reconciler.forget(accounts)

    async def health(self) -> HealthReport:
        report = await super().health()
        checks = dict(report.checks)
        suspended = self._parts.state.suspended if self._parts is not None else {}
        if suspended:
            # Reported, not unhealthy: the service is doing its job by refusing orders.
            checks["trading"] = "suspended for " + ", ".join(sorted(suspended))
        return HealthReport(report.healthy, checks)
