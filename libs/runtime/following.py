"""The shell every projection-backed service shares: connections, clock, follower, health.

A business service (strategy, risk, execution, position monitor) connects to the bus
and PostgreSQL, takes the business clock (a test's, else the runner's), builds its state
with a `Follower` over the business stream, answers its commands, and reports on /health
whether that state is caught up. `FollowingService` holds those parts so each service's
own module is about its decisions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from libs.contracts.commands import Reply
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from libs.runtime.connected import ConnectedService
from libs.runtime.follower import Apply, Follower, React
from libs.runtime.log import get_logger
from libs.runtime.runner import HealthReport, ServiceContext


class FollowingService:
    """Base of a service whose state is a projection of the business stream."""

    def __init__(self, name: str, *, clock: Clock | None = None, durable: str | None = None):
        """``clock`` replaces the runner's (tests); ``durable`` names the live consumer."""
        self.name = name
        self._connected = ConnectedService(name)
        self._clock_override = clock
        self._clock: Clock | None = None
        self._durable = durable or name
        self._follower: Follower | None = None
        self._log = get_logger(name)

    @property
    def clock(self) -> Clock:
        """The business clock (the constructor's, else the runner's)."""
        if self._clock is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._clock

    @property
    def bus(self) -> Bus:
        """The service's bus connection (after start)."""
        return self._connected.bus

    @property
    def follower(self) -> Follower:
        """The projection follower (after start)."""
        if self._follower is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._follower

    async def connect(self, ctx: ServiceContext) -> None:
        """Take the business clock and connect to the bus and PostgreSQL."""
        self._clock = self._clock_override or ctx.clock
        await self._connected.start(ctx)

    async def follow(self, apply: Apply, react: React | None = None) -> None:
        """Fold the stream's history into the state, then follow it live (returns caught up)."""
        if react is None:
            self._follower = Follower(self.bus, self._durable, apply)
        else:
            self._follower = Follower(self.bus, self._durable, apply, react)
        await self._follower.start()

    async def serve(self, handlers: Mapping[str, Callable[[Any], Awaitable[Reply]]]) -> None:
        """Answer the service's commands; registered on the server when this returns."""
        await self.bus.serve(self.name, handlers)
        await self.bus.flush()

    async def stop_following(self) -> None:
        """Stop the live consumer after the event in hand (the durable consumer stays)."""
        if self._follower is not None:
            await self._follower.stop()

    async def disconnect(self) -> None:
        """Stop following, then close the connections."""
        await self.stop_following()
        await self._connected.stop()

    def projection_state(self) -> str:
        """ "ok" once the history is folded and the live consumer runs; else what is not."""
        follower = self._follower
        if follower is None:
            return "not started"
        if not follower.caught_up:
            return "catching up"
        if not follower.running:
            return "stopped"
        return "ok"

    async def health(self) -> HealthReport:
        """NATS, PostgreSQL and the projection; healthy when all three are "ok"."""
        report = await self._connected.health()
        checks = {**report.checks, "projection": self.projection_state()}
        return HealthReport(all(v == "ok" for v in checks.values()), checks)
