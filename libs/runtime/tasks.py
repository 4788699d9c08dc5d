"""Background tasks a service owns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from structlog.stdlib import BoundLogger


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, log: BoundLogger | None = None
) -> None:
    """Cancel ``tasks`` and wait until each has ended (its cancellation swallowed).

    A task that had failed raises its exception here; with ``log`` it is logged with its
    trace instead and the other tasks are still waited for (a stop that must complete
    whatever one background task did wrong).
    """
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        if log is None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            continue
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # stopping anyway: reported, and the others still awaited
            log.exception("background task failed", task=task.get_name())


async def run_periodically(
    work: Callable[[], Awaitable[None]],
    interval_s: float,
    *,
    what: str,
    log: BoundLogger,
    wake: asyncio.Event | None = None,
) -> None:
    """Run ``work`` now and then every ``interval_s`` seconds (sooner when ``wake`` is
    set) until cancelled. A failing pass is logged with its trace and the next one runs
    on time: one bad pass must not end a service's timed work.
    """
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:  # logged with the trace; the next pass tries again
            log.exception(f"{what} failed")
        if wake is None:
            await asyncio.sleep(interval_s)
            continue
        # Not asyncio.wait_for: on 3.11 it swallows a cancel that arrives in the turn the
        # event is set, and the loop would outlive its service's stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await wake.wait()
        wake.clear()
