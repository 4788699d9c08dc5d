"""Cancelling a service's background tasks."""

from __future__ import annotations

import asyncio

import pytest
import structlog
import structlog.testing

from libs.runtime.tasks import cancel_and_wait, run_periodically


async def test_every_task_is_cancelled_and_has_ended_on_return() -> None:
    tasks = [asyncio.create_task(asyncio.sleep(60)) for _ in range(3)]
    done = asyncio.create_task(asyncio.sleep(0))
    await done

    await cancel_and_wait([*tasks, done])

    assert all(t.cancelled() for t in tasks)
    assert done.done()
    assert not done.cancelled()


async def test_a_failed_task_is_logged_and_the_others_still_awaited() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    failed = asyncio.create_task(fail(), name="failing")
    await asyncio.sleep(0)
    sleeping = asyncio.create_task(asyncio.sleep(60))
    log = structlog.get_logger("test").bind()
    with structlog.testing.capture_logs() as logs:
        await cancel_and_wait([failed, sleeping], log=log)

    assert sleeping.cancelled()
    assert [(e["event"], e["task"]) for e in logs] == [("background task failed", "failing")]


async def test_without_a_log_a_failed_task_raises() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    failed = asyncio.create_task(fail())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="boom"):
        await cancel_and_wait([failed])


async def test_a_periodic_pass_that_fails_is_logged_and_the_next_one_runs() -> None:
    passes: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise ValueError("first pass fails")
        if len(passes) == 3:
            third.set()

    log = structlog.get_logger("test").bind()
    with structlog.testing.capture_logs() as logs:
        loop = asyncio.create_task(run_periodically(work, 0, what="the pass", log=log))
        await asyncio.wait_for(third.wait(), 10)
        await cancel_and_wait([loop])

    assert loop.cancelled()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["the pass failed"]


async def test_a_wake_runs_the_next_pass_before_the_interval() -> None:
    wake = asyncio.Event()
    passes = 0
    second = asyncio.Event()

    async def work() -> None:
        nonlocal passes
        passes += 1
        if passes == 2:
            second.set()

    log = structlog.get_logger("test").bind()
    loop = asyncio.create_task(run_periodically(work, 3600, what="x", log=log, wake=wake))
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(second.wait(), 10)
    await cancel_and_wait([loop])
    assert passes == 2


async def test_a_cancel_in_the_turn_a_wake_arrives_still_ends_the_loop() -> None:
    """asyncio.wait_for on 3.11 swallows such a cancel; the loop must end regardless."""
    wake = asyncio.Event()
    log = structlog.get_logger("test").bind()

    async def work() -> None:
        return None

    loop = asyncio.create_task(run_periodically(work, 3600, what="x", log=log, wake=wake))
    for _ in range(3):
        await asyncio.sleep(0)  # the loop now waits for the wake
    wake.set()
    loop.cancel()
    await asyncio.wait_for(asyncio.wait({loop}), 5)
    assert loop.cancelled()
