"""The position monitor's shell: marks, exits, broker sync and notifications (DOMAIN.md 6-8).

State is `MonitorState` (every account's `PositionBook`, the exit orders of each spread
and where they stand, e-mail topics), built by a `Follower` in stream order and only
so: the live book is the one ``senex replay`` folds from the log. Decisions come from
the pure core (`services.position_monitor.core`).

One decision loop, under one lock shared with the commands, makes every decision. It
runs every ``tick_s`` real seconds and whenever the follower folds an event. After
publishing, it waits until the follower has folded its own events (the publish ack's
stream sequence; `FollowingService.publish`), so the next decision reads what it just
decided; decision ids are deterministic besides (exit order ids from the core, event
ids from `event_ids`), so a decision made twice is dropped by the bus and by execution.
Each pass:

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

This module only runs the parts, each in its own module (built by `bootstrap`):

- `loop`: the decision loop (passes under the lock, wake-ups);
- `closing`: closing fills; `marks`: valuations; `quotes`: leases and polls;
- `exits`: stop loss, the daily run, ``ClosePosition``;
- `broker_sync`: the sync, the account streams, ``SyncPositions``;
- `notifications`: the reactions and the e-mail notifier's input;
- `queries`: ``GetPosition`` and ``GetPositions``.
"""

from __future__ import annotations

import asyncio

from libs.contracts.commands import ClosePosition, GetPosition, GetPositions, SyncPositions
from libs.contracts.envelope import Event
from libs.runtime.following import FollowingService
from libs.runtime.runner import HealthReport, ServiceContext
from libs.runtime.tasks import cancel_and_wait
from services.position_monitor import SERVICE
from services.position_monitor.bootstrap import MonitorDependencies, MonitorParts, assemble
from services.position_monitor.state import MonitorState


class PositionMonitorService(FollowingService):
    """Values positions, decides their exits, syncs with the broker, notifies the user."""

    name = SERVICE

    def __init__(self, deps: MonitorDependencies, *, durable: str = SERVICE) -> None:
        """``deps``: what the monitor is built with (`bootstrap.MonitorDependencies`)."""
        super().__init__(SERVICE, clock=deps.clock, durable=durable)
        self._deps = deps
        self._parts: MonitorParts | None = None
        self._loop_task: asyncio.Task[None] | None = None

    def _running(self) -> MonitorParts:
        if self._parts is None:
            raise RuntimeError("the position monitor is not started")
        return self._parts

    @property
    def state(self) -> MonitorState:
        """What the service knows (read-only use; after start)."""
        return self._running().state

    async def start(self, ctx: ServiceContext) -> None:
        await self.connect(ctx)
        self._parts = parts = await assemble(self, self._deps, ctx)
        await self.follow(parts.state.apply, self._react)
        await self.serve(
            {
                GetPosition.VERB: parts.queries.get_position,
                GetPositions.VERB: parts.queries.get_positions,
                ClosePosition.VERB: parts.manual.close_position,
                SyncPositions.VERB: parts.sync.sync_positions,
            }
        )
        self._loop_task = asyncio.create_task(parts.loop.run(), name="monitor-loop")

    async def _react(self, event: Event) -> None:
        parts = self._running()
        parts.loop.poke()  # a folded event may make a decision due
        await parts.notifications.react(event)

    async def stop(self) -> None:
        parts = self._parts
        if self._loop_task is not None:
            await cancel_and_wait([self._loop_task])
        if parts is not None:
            await parts.feeds.close()
        await self.stop_following()  # no reaction may reach the broker once it is closed
        if parts is not None:
            await parts.notifier.stop()
            await parts.adapter.aclose()
        await self.disconnect()

    async def health(self) -> HealthReport:
        report = await super().health()
        loop = self._loop_task
        decisions = "ok" if loop is not None and not loop.done() else "not running"
        checks = {**report.checks, "decisions": decisions}
        return HealthReport(all(v == "ok" for v in checks.values()), checks)
