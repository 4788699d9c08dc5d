"""The decision loop: every decision of the monitor, one pass at a time, under one lock.

The lock is shared with the commands that decide (``ClosePosition``, ``SyncPositions``).
A pass runs every ``tick_s`` real seconds and whenever the follower folds an event
(`poke`). Each pass, after polling the quotes when due (outside the lock):

1. closing fills (`FillCloser`);
2. marks and stops, when a poll brought fresh quotes (`Marks`);
3. the daily 7-DTE run (`DailyRun`);
4. the broker sync (`BrokerSync`).

Every part publishes through the shell, which returns once the fold has passed what was
published, so each step reads the decisions of the steps before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from structlog.stdlib import BoundLogger

from libs.runtime.clock import Clock
from libs.runtime.tasks import run_periodically
from services.position_monitor.broker_sync import BrokerSync
from services.position_monitor.closing import FillCloser
from services.position_monitor.exits import DailyRun
from services.position_monitor.marks import Marks
from services.position_monitor.quotes import Quotes


class DecisionLoop:
    """Runs the passes; `poke` asks for one now."""

    def __init__(
        self,
        clock: Callable[[], Clock],
        *,
        quotes: Quotes,
        closer: FillCloser,
        marks: Marks,
        daily: DailyRun,
        sync: BrokerSync,
        lock: asyncio.Lock,
        wake: asyncio.Event,
        tick_s: float,
        log: BoundLogger,
    ) -> None:
        """``clock`` gives the business clock (set when the service starts)."""
        self._clock = clock
        self._quotes = quotes
        self._closer = closer
        self._marks = marks
        self._daily = daily
        self._sync = sync
        self._lock = lock
        self._wake = wake
        self._tick_s = tick_s
        self._log = log

    def poke(self) -> None:
        """Run a pass as soon as the current one (if any) is done."""
        self._wake.set()

    async def run(self) -> None:
        """Pass after pass until cancelled (a failing pass is logged; the next runs)."""
        await run_periodically(
            self.step, self._tick_s, what="decision pass", log=self._log, wake=self._wake
        )

    async def step(self) -> None:
        """Poll the quotes if due, then one pass under the lock."""
        await self._quotes.poll_if_due()
        async with self._lock:
            now = self._clock().now()
            await self._closer.close_filled()
            if self._quotes.take_fresh():
                await self._marks.mark_to_market(now)
            await self._daily.run_if_due(now)
            await self._sync.run(now)
