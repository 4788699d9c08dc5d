"""The decision loop: the order of a pass, under the lock, and what wakes it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, cast

import structlog

from libs.runtime.clock import ManualClock
from services.position_monitor.broker_sync import BrokerSync
from services.position_monitor.closing import FillCloser
from services.position_monitor.exits import DailyRun
from services.position_monitor.loop import DecisionLoop
from services.position_monitor.marks import Marks
from services.position_monitor.quotes import Quotes
from tests.unit.position_monitor.builders import NOW


class Steps:
    """Every part of a pass at once, recording the calls (and whether the lock was held)."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.calls: list[tuple[str, bool]] = []
        self.fresh = False
        self.fail = False
        self.passed = asyncio.Event()

    def _record(self, name: str) -> None:
        self.calls.append((name, self.lock.locked()))

    async def poll_if_due(self) -> None:
        self._record("poll")

    def take_fresh(self) -> bool:
        fresh, self.fresh = self.fresh, False
        return fresh

    async def close_filled(self) -> None:
        self._record("close")
        if self.fail:
            raise RuntimeError("a bad pass")

    async def mark_to_market(self, now: datetime) -> None:
        self._record("marks")

    async def run_if_due(self, now: datetime) -> None:
        self._record("daily")

    async def run(self, now: datetime) -> None:
        self._record("sync")
        self.passed.set()


def loop_of(tick_s: float = 60.0) -> tuple[DecisionLoop, Steps]:
    lock = asyncio.Lock()
    steps = Steps(lock)
    part: Any = steps
    loop = DecisionLoop(
        lambda: ManualClock(NOW),
        quotes=cast(Quotes, part),
        closer=cast(FillCloser, part),
        marks=cast(Marks, part),
        daily=cast(DailyRun, part),
        sync=cast(BrokerSync, part),
        lock=lock,
        wake=asyncio.Event(),
        tick_s=tick_s,
        log=structlog.get_logger(),
    )
    return loop, steps


async def test_a_pass_polls_outside_the_lock_then_decides_in_order_under_it() -> None:
    loop, steps = loop_of()
    await loop.step()
    assert steps.calls == [("poll", False), ("close", True), ("daily", True), ("sync", True)]


async def test_marks_only_after_a_poll_brought_fresh_quotes() -> None:
    loop, steps = loop_of()
    steps.fresh = True
    await loop.step()
    assert [name for name, _ in steps.calls] == ["poll", "close", "marks", "daily", "sync"]
    steps.calls.clear()
    await loop.step()
    assert "marks" not in [name for name, _ in steps.calls]


async def test_a_poke_runs_a_pass_before_the_tick_and_a_failing_pass_does_not_stop_it() -> None:
    loop, steps = loop_of(tick_s=60.0)
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(steps.passed.wait(), 5)  # the first pass runs at once
        steps.passed.clear()
        steps.fail = True
        loop.poke()
        await asyncio.sleep(0.05)
        steps.fail = False
        loop.poke()
        await asyncio.wait_for(steps.passed.wait(), 5)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
