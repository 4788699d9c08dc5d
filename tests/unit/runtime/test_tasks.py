"""Cancelling a service's background tasks."""

from __future__ import annotations

import asyncio

from libs.runtime.tasks import cancel_and_wait


async def test_every_task_is_cancelled_and_has_ended_on_return() -> None:
    tasks = [asyncio.create_task(asyncio.sleep(60)) for _ in range(3)]
    done = asyncio.create_task(asyncio.sleep(0))
    await done

    await cancel_and_wait([*tasks, done])

    assert all(t.cancelled() for t in tasks)
    assert done.done()
    assert not done.cancelled()
