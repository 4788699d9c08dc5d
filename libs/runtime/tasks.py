"""Background tasks a service owns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from structlog.stdlib import BoundLogger


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended (its cancellation swallowed)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval_s)
        wake.clear()
