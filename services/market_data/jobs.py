"""Background broker work of the market-data service, at most one job of each kind at a time.

The scheduler starts broker calls (connect, chains, window, IV rank, balances) here
rather than awaiting them, so a slow broker never delays staleness checks or command
replies; a kind still running when it falls due again is skipped, not queued, and a
failed job is logged and retried at its next due time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from libs.contracts.errors import SenexError
from libs.runtime.log import get_logger
from services.market_data import SERVICE


class BackgroundJobs:
    """The running job of each kind."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}
        self._log = get_logger(SERVICE)

    def start(self, name: str, work: Awaitable[None]) -> None:
        """Run ``work`` in the background unless a job of that name is still running."""
        running = self._running.get(name)
        if running is not None and not running.done():
            close = getattr(work, "close", None)
            if close is not None:
                close()  # never awaited: close the coroutine so Python does not warn
            return

        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except SenexError as exc:
                self._log.warning("job failed", job=name, kind=exc.kind.value, error=exc.message)
            except Exception:
                self._log.exception("job failed", job=name)

        self._running[name] = asyncio.create_task(run(), name=f"md-{name}")

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """Every job's task, running or done (the service cancels them at stop)."""
        return list(self._running.values())
