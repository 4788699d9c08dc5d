"""Cancelling a service's background tasks."""

from __future__ import annotations

import asyncio

import pytest
import structlog
import structlog.testing

from libs.runtime.tasks import cancel_and_wait


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
