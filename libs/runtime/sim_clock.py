"""A `Clock` following the broker simulator's clock (paper mode's business time).

`SimulatorClock` reads ``GET {simulator_url}/sim/clock`` (``{"now": ISO-8601, "speed":
float, ...}``) and between readings extrapolates locally::

    now() = sim_now + (real_elapsed x speed)

``now()`` does no I/O. A background task (started and stopped by the owner) re-reads
the simulator every ``resync_interval_s`` seconds of real time, and sooner after an
error (backoff 0.5, 1, 2 ... capped at the interval). Business time never goes
backwards: when a re-sync would move it back, ``now()`` holds the last value it
returned until the new estimate catches up. Real-time intervals use the monotonic
clock (transport timers are real time, DOMAIN.md 8).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx2

from libs.runtime.clock import require_aware
from libs.runtime.log import get_logger
from libs.runtime.tasks import cancel_and_wait

_log = get_logger("sim_clock")

#: First retry delay after a failed re-sync (seconds, real time); doubles up to the interval.
FIRST_RETRY_S = 0.5


class SimulatorClockUnavailable(RuntimeError):
    """The simulator's clock could not be read (or was never read)."""


@dataclass(frozen=True)
class ClockReading:
    """The simulator's answer: its instant and how fast its time runs."""

    now: datetime
    speed: float


async def fetch_simulator_clock(client: httpx2.AsyncClient, url: str) -> ClockReading:
    """Read ``GET {url}/sim/clock``; raises `SimulatorClockUnavailable` on any failure."""
    try:
        response = await client.get(f"{url.rstrip('/')}/sim/clock")
        response.raise_for_status()
        body = response.json()
        speed = float(body["speed"])
        if not speed >= 0:
            raise ValueError(f"negative speed {speed}")
        return ClockReading(now=require_aware(datetime.fromisoformat(body["now"])), speed=speed)
    except (httpx2.HTTPError, KeyError, TypeError, ValueError) as exc:
        raise SimulatorClockUnavailable(
            f"cannot read the simulator clock at {url}: {type(exc).__name__}: {exc}"
        ) from exc


class SimulatorClock:
    """Business time that follows the simulator; ``now()`` is local arithmetic only.

    Use ``async with SimulatorClock(url) as clock`` (or `start`/`stop`): entering reads
    the simulator once (raising `SimulatorClockUnavailable` if it cannot), then keeps
    re-syncing in the background.
    """

    def __init__(
        self,
        simulator_url: str,
        *,
        resync_interval_s: float = 5.0,
        request_timeout_s: float = 5.0,
        fetch: Callable[[], Awaitable[ClockReading]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``fetch``, ``monotonic`` and ``sleep`` replace the network and real time (tests)."""
        if resync_interval_s <= 0:
            raise ValueError("resync_interval_s must be positive")
        self._url = simulator_url
        self._interval = resync_interval_s
        self._timeout = request_timeout_s
        self._fetch = fetch
        self._monotonic = monotonic
        self._sleep = sleep
        self._client: httpx2.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._base: datetime | None = None
        self._base_mono = 0.0
        self._speed = 0.0
        self._last: datetime | None = None
        self._failures = 0

    def __repr__(self) -> str:
        return f"SimulatorClock(url={self._url!r}, speed={self._speed}, synced={self.synced})"

    # --- reading ------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether the simulator has been read at least once."""
        return self._base is not None

    @property
    def speed(self) -> float:
        """Simulated seconds per real second, as of the last reading."""
        return self._speed

    @property
    def consecutive_failures(self) -> int:
        """Re-syncs that failed since the last good one (for health checks)."""
        return self._failures

    def now(self) -> datetime:
        """The simulator's current instant (UTC), never earlier than a previous answer."""
        if self._base is None:
            raise SimulatorClockUnavailable("the simulator clock has not been read yet")
        elapsed = max(0.0, self._monotonic() - self._base_mono)
        estimate = self._base + timedelta(seconds=elapsed * self._speed)
        if self._last is not None and estimate < self._last:
            return self._last
        self._last = estimate
        return estimate

    # --- syncing ------------------------------------------------------------------------

    async def sync(self) -> None:
        """Read the simulator once and re-base the local estimate on its answer."""
        sent = self._monotonic()
        reading = await self._read()
        received = self._monotonic()
        # The simulator read its clock somewhere in between; the midpoint halves the error.
        self._base = reading.now
        self._base_mono = (sent + received) / 2
        self._speed = reading.speed
        self._failures = 0

    async def _read(self) -> ClockReading:
        if self._fetch is not None:
            return await self._fetch()
        if self._client is None:
            self._client = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self._timeout), trust_env=False
            )
        return await fetch_simulator_clock(self._client, self._url)

    async def start(self) -> None:
        """Read the simulator (raising if it cannot), then re-sync in the background."""
        if self._task is not None:
            return
        await self.sync()
        self._task = asyncio.create_task(self._run(), name="simulator-clock-resync")

    async def stop(self) -> None:
        """Stop re-syncing and close the HTTP client; ``now()`` keeps extrapolating."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> SimulatorClock:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def retry_delay(self) -> float:
        """The wait before the next re-sync: the interval, or the backoff after failures."""
        if self._failures == 0:
            return self._interval
        return min(self._interval, FIRST_RETRY_S * 2.0 ** (self._failures - 1))

    async def _run(self) -> None:
        while True:
            await self._sleep(self.retry_delay())
            try:
                await self.sync()
            except Exception as exc:  # the loop must survive any failed reading
                self._failures += 1
                _log.warning(
                    "simulator clock re-sync failed; extrapolating",
                    failures=self._failures,
                    error=str(exc),
                )
