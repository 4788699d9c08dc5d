"""The shell every projection-backed service shares: connections, clock, follower, health.

A business service (strategy, risk, execution, position monitor) connects to the bus
and PostgreSQL, takes the business clock (a test's, else the runner's), builds its state
with a `Follower` over the business stream, answers its commands, and reports on /health
whether that state is caught up. `FollowingService` holds those parts so each service's
own module is about its decisions.

A partitioned service (one of `PARTITIONED_SERVICES`) can run as several replicas: each folds
every account, but answers the commands of, reacts to the events of, and runs timed
work for only the accounts of the partitions it holds a lease on (`owns`). Leases are
taken when the service starts serving and handed over when replicas come and go
(`libs.runtime.leases`); a service learns of it through `partition_acquired` and
`partition_released`.

One consistency rule for every service (docs/decisions/0002-state-is-the-stream-fold.md):
a service's state is the fold of the business stream, in stream order, and nothing else.
A service never applies an event it publishes directly; `publish` returns once the fold
has passed the events just published, so the service reads its own decision next, in
the order every replica and ``senex replay`` see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from nats.aio.subscription import Subscription

from libs.contracts.commands import Reply
from libs.contracts.envelope import Event
from libs.contracts.partitions import PARTITIONED_SERVICES, all_partitions, partition_of
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from libs.runtime.connected import ConnectedService
from libs.runtime.envelopes import Envelopes
from libs.runtime.follower import Apply, Follower, React
from libs.runtime.leases import PartitionLeases, default_replica_id
from libs.runtime.log import get_logger
from libs.runtime.runner import HealthReport, ServiceContext

CommandHandlers = Mapping[str, Callable[[Any], Awaitable[Reply]]]


class ServiceShell(Protocol):
    """What a service's collaborating objects use of their `FollowingService` (once
    connected): one protocol, so the parts of every service are typed and faked alike."""

    name: str
    envelope: Envelopes

    @property
    def clock(self) -> Clock:
        """The business clock."""
        ...

    @property
    def bus(self) -> Bus:
        """The bus connection (requests; publishing without waiting for the fold)."""
        ...

    def owns(self, account_id: str) -> bool:
        """Whether this replica works for ``account_id``."""
        ...

    async def publish(self, *events: Event) -> None:
        """Publish, then return once the fold has passed them (state is the stream fold)."""
        ...


class FollowingService:
    """Base of a service whose state is a projection of the business stream."""

    def __init__(
        self,
        name: str,
        *,
        clock: Clock | None = None,
        durable: str | None = None,
        replica: str | None = None,
    ):
        """``clock`` replaces the runner's (tests); ``durable`` names the live consumers;
        ``replica`` replaces the settings' replica id (tests running several in one process).
        """
        self.name = name
        #: Whether replicas share the accounts by partition (else one replica does all).
        self.partitioned = name in PARTITIONED_SERVICES
        self._connected = ConnectedService(name)
        self._clock_override = clock
        self._clock: Clock | None = None
        self._durable = durable or name
        self._replica = replica
        self._follower: Follower | None = None
        self._partition_leases: PartitionLeases | None = None
        self._handlers: CommandHandlers = {}
        self._command_subs: dict[int, list[Subscription]] = {}
        self._owned: frozenset[int] = frozenset() if self.partitioned else all_partitions()
        self._log = get_logger(name)
        #: Envelope fields of this service's events: ``Event(**self.envelope(account, cause))``.
        self.envelope = Envelopes(name, lambda: self.clock)

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

    async def publish(self, *events: Event) -> None:
        """Publish ``events`` (acks in flight together), then wait until the fold has
        passed them, so the state reads them next (see the module docstring)."""
        if not events:
            return
        acks = await self.bus.publish_many(events)
        timeout = self._connected.context.settings.fold_timeout_s
        await self.follower.fold_published(list(zip(events, acks, strict=True)), timeout)

    async def connect(self, ctx: ServiceContext) -> None:
        """Take the business clock and connect to the bus and PostgreSQL."""
        self._clock = self._clock_override or ctx.clock
        await self._connected.start(ctx)

    def owns(self, account_id: str) -> bool:
        """Whether this replica answers, reacts and runs timed work for ``account_id``."""
        return partition_of(account_id) in self._owned

    async def follow(self, apply: Apply, react: React | None = None) -> None:
        """Fold the stream's history into the state, then follow it live (returns caught up).

        A service that is not partitioned starts reacting at once; a partitioned one when
        it takes its partitions in `serve`.
        """
        if react is None:
            self._follower = Follower(self.bus, self._durable, apply)
        else:
            self._follower = Follower(self.bus, self._durable, apply, react)
        await self._follower.start(react_to_all=not self.partitioned)

    async def serve(self, handlers: CommandHandlers) -> None:
        """Answer the service's commands; registered on the server when this returns.

        A partitioned service takes its share of the partitions here (and answers only
        theirs); it may hold none yet when other replicas still hold them.
        """
        self._handlers = handlers
        if not self.partitioned:
            await self.bus.serve(self.name, handlers)
            await self.bus.flush()
            return
        settings = self._connected.context.settings
        self._partition_leases = PartitionLeases(
            self.bus,
            self.name,
            self._replica or settings.replica_id or default_replica_id(),
            acquire=self._acquire,
            release=self._release,
            ttl=settings.lease_ttl_s,
            tick=settings.lease_tick_s,
        )
        await self._partition_leases.start()

    async def _acquire(self, partition: int) -> None:
        self._owned = self._owned | {partition}
        await self.partition_acquired(partition)
        self._command_subs[partition] = await self.bus.serve(
            self.name, self._handlers, partition=partition
        )
        await self.follower.react_to(partition)
        await self.bus.flush()

    async def _release(self, partition: int, lost: bool) -> None:
        self._owned = self._owned - {partition}
        await self.bus.unserve(self._command_subs.pop(partition, []))
        await self.follower.stop_reacting(partition)
        await self.partition_released(partition, lost=lost)

    async def partition_acquired(self, partition: int) -> None:
        """Called before this replica starts working on ``partition`` (already `owns`)."""

    async def partition_released(self, partition: int, *, lost: bool) -> None:
        """Called once this replica stopped reacting to and answering for ``partition``.

        ``lost``: the lease ran out (NATS unreachable too long), so another replica may
        already own the partition: stop its work at once rather than let it finish.
        """

    async def stop_following(self) -> None:
        """Hand the partitions back, then stop following (the durable consumers stay)."""
        if self._partition_leases is not None:
            await self._partition_leases.stop()
            self._partition_leases = None
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
        """NATS, PostgreSQL and the projection; healthy when all three are "ok".

        A partitioned replica also reports the partitions it holds (informational: a
        standby replica holding none is healthy).
        """
        report = await self._connected.health()
        checks = {**report.checks, "projection": self.projection_state()}
        healthy = all(v == "ok" for v in checks.values())
        if self.partitioned:
            checks["partitions"] = ",".join(map(str, sorted(self._owned))) or "none"
        return HealthReport(healthy, checks)
