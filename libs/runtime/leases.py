"""Which replica of a service owns which partitions: leases in a NATS key-value bucket.

Every replica of a partitioned service (strategy, risk, execution) keeps two kinds of
keys alive in the ``senex_leases`` bucket, whose entries expire ``ttl`` seconds after
their last write:

* ``<service>.member.<replica>``: "I am alive", rewritten every tick;
* ``<service>.partition.<n>``: "partition n is mine", created only where no live key
  exists (the server refuses a second create) and rewritten every tick with the
  revision it last wrote (the server refuses a write over someone else's).

Each tick every replica computes the same balanced assignment of partitions to the
live members (`assign`), gives up what it holds but is no longer assigned (it stops
working on the partition first, then deletes the key) and claims what it is assigned
and is free. A replica that is killed stops rewriting its keys: they expire after
``ttl`` and the survivors take its partitions. A replica that cannot reach NATS for
most of ``ttl`` stops working on its partitions before the server could hand them to
someone else, so two replicas never act on one partition at the same time.

The replica id must be unique among live replicas of a service (default: host name and
process id). A replica restarted under the id of a dead one reclaims its keys at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable

import nats.js.errors
from nats.js import api
from nats.js.kv import KeyValue

from libs.contracts.partitions import PARTITIONS
from libs.contracts.tokens import token
from libs.runtime.bus import Bus
from libs.runtime.log import get_logger
from libs.runtime.tasks import cancel_and_wait

LEASE_BUCKET = "senex_leases"
#: Seconds a lease outlives its holder's last refresh.
LEASE_TTL_S = 6.0
#: Seconds between refreshes (and rebalancing rounds).
LEASE_TICK_S = 1.0
#: Shortest wait for a lease request's answer (a very short tick would make all fail).
LEASE_REQUEST_MIN_TIMEOUT_S = 0.5

#: Start working on a partition (this replica holds its lease).
AcquireHook = Callable[[int], Awaitable[None]]
#: Stop working on a partition; the flag says the lease was lost rather than handed over.
ReleaseHook = Callable[[int, bool], Awaitable[None]]


def default_replica_id() -> str:
    """Host name and process id: unique among live processes, reused only after death."""
    return token(f"{socket.gethostname()}-{os.getpid()}")


def _weight(member: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{member}/{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(members: Iterable[str], partitions: Iterable[int]) -> dict[int, str]:
    """Each partition to one member: balanced (at most ceil(n / m) each), deterministic.

    Rendezvous hashing with a capacity: every member ranks the members for a partition
    the same way, so replicas that see the same members agree without talking, and a
    member's arrival or departure moves few partitions.
    """
    ranked_members = sorted(set(members))
    wanted = sorted(set(partitions))
    if not ranked_members:
        return {}
    capacity = math.ceil(len(wanted) / len(ranked_members))
    load = dict.fromkeys(ranked_members, 0)
    owners: dict[int, str] = {}
    for partition in wanted:
        ranking = sorted(ranked_members, key=lambda m: _weight(m, partition), reverse=True)
        owner = next(m for m in ranking if load[m] < capacity)
        owners[partition] = owner
        load[owner] += 1
    return owners


class PartitionLeases:
    """Holds this replica's share of a service's partitions, and hands it over on change.

    Two loops: the keep-alive rewrites the member key and every held lease each tick
    (also while a partition is being handed over, however long its release hook takes,
    so no other replica can claim it meanwhile); the rebalancer gives up and claims
    partitions toward the assignment.
    """

    def __init__(
        self,
        bus: Bus,
        service: str,
        replica: str,
        *,
        acquire: AcquireHook,
        release: ReleaseHook,
        partitions: int = PARTITIONS,
        ttl: float = LEASE_TTL_S,
        tick: float = LEASE_TICK_S,
    ) -> None:
        """``release(partition, lost)``: ``lost`` when the lease ran out (stop at once)."""
        if tick * 3 > ttl:
            raise ValueError("a lease must survive at least three missed refreshes")
        self._bus = bus
        # Lease requests give up after about a tick: one stuck on a cluster's leader
        # election must not hold the keep-alive past the point of no return, while the
        # next tick's attempt may already reach the new leader.
        self._js = bus.nc.jetstream(timeout=max(tick, LEASE_REQUEST_MIN_TIMEOUT_S))
        self._service = token(service)
        self.replica = token(replica)
        self._acquire = acquire
        self._release = release
        self._partitions = range(partitions)
        self._ttl = ttl
        self._tick = tick
        self._kv: KeyValue | None = None
        self._held: dict[int, int] = {}
        """Partition -> revision of the lease key this replica last wrote."""
        self._working: set[int] = set()
        self._handing_over: dict[int, asyncio.Task[None]] = {}
        self._last_refresh = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._log = get_logger("leases", service=service, replica=self.replica)

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this replica works on now."""
        return frozenset(self._working)

    def _member_key(self, replica: str) -> str:
        return f"{self._service}.member.{replica}"

    def _partition_key(self, partition: int) -> str:
        return f"{self._service}.partition.{partition}"

    async def start(self) -> None:
        """Join, take this replica's share of what is free, and keep it up to date."""
        await self.keep_alive()
        await self.rebalance()
        self._tasks = [
            asyncio.create_task(self._every_tick(self._keep_alive_round), name="lease-keepalive"),
            asyncio.create_task(self._every_tick(self._rebalance_round), name="lease-rebalance"),
        ]

    async def _every_tick(self, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self._tick)
            await work()

    async def _keep_alive_round(self) -> None:
        try:
            # Bounded: a round stuck on an unreachable server must not outlast the
            # point where this replica has to stop working on its partitions.
            async with asyncio.timeout(self._ttl - 2 * self._tick):
                await self.keep_alive()
        except Exception as exc:  # NATS away or restarting: the next tick retries
            self._kv = None
            self._log.warning("lease refresh failed", error=repr(exc))
            if time.monotonic() - self._last_refresh >= self._ttl - 2 * self._tick:
                self._lose(sorted(self._held), "leases not refreshed in time")

    async def _rebalance_round(self) -> None:
        try:
            await self.rebalance()
        except Exception as exc:  # the keep-alive decides what an outage costs
            self._log.warning("rebalancing failed", error=repr(exc))

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(LEASE_BUCKET)
            except nats.js.errors.BucketNotFoundError:
                self._kv = await self._js.create_key_value(
                    api.KeyValueConfig(
                        bucket=LEASE_BUCKET,
                        history=1,
                        ttl=self._ttl,
                        storage=api.StorageType.MEMORY,
                        replicas=self._bus.stream_replicas,
                    )
                )
        return self._kv

    async def keep_alive(self) -> None:
        """Rewrite the member key and every held lease; a lease found taken is lost."""
        started = time.monotonic()
        kv = await self._bucket()
        await kv.put(self._member_key(self.replica), b"alive")
        lost = await asyncio.gather(*(self._refresh(kv, p) for p in sorted(self._held)))
        self._last_refresh = started
        self._lose([p for p in lost if p is not None], "lease expired or taken")

    async def _refresh(self, kv: KeyValue, partition: int) -> int | None:
        """Rewrite one lease; the partition when it is no longer this replica's."""
        try:
            revision = await kv.update(
                self._partition_key(partition), self.replica.encode(), last=self._held[partition]
            )
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            return partition
        if partition in self._held:
            self._held[partition] = revision
        return None

    def _lose(self, partitions: list[int], reason: str) -> None:
        """Stop working on ``partitions`` at once: their leases are gone or going."""
        for partition in partitions:
            self._held.pop(partition, None)
            if partition in self._working:
                self._log.warning("lease lost", partition=partition, reason=reason)
                self._hand_over(partition, lost=True)

    def _hand_over(self, partition: int, *, lost: bool) -> None:
        self._working.discard(partition)
        task = asyncio.create_task(self._finish(partition, lost=lost), name=f"release-{partition}")
        self._handing_over[partition] = task

    async def _finish(self, partition: int, *, lost: bool) -> None:
        try:
            await self._release(partition, lost)
        except Exception:
            self._log.exception("releasing a partition failed", partition=partition)
        finally:
            self._handing_over.pop(partition, None)
        if self._held.pop(partition, None) is not None and self._kv is not None:
            # NATS away, or the key expired or changed meanwhile: it expires on its own.
            with contextlib.suppress(Exception):
                await self._delete_own(self._kv, self._partition_key(partition))
        self._log.info("partition released", partition=partition, lost=lost)

    async def _delete_own(self, kv: KeyValue, key: str) -> None:
        """Delete ``key`` if this replica still holds it (a refresh may have moved it on)."""
        entry = await kv.get(key)
        if entry.value == self.replica.encode() and entry.revision is not None:
            await kv.delete(key, last=entry.revision)

    async def rebalance(self) -> None:
        """One round: give up what is no longer assigned here, claim what is and is free."""
        kv = await self._bucket()
        target = {
            partition
            for partition, owner in assign(await self._members(kv), self._partitions).items()
            if owner == self.replica
        }
        for partition in sorted(self._working - target):
            self._hand_over(partition, lost=False)
        claims = sorted(target - self._working - set(self._handing_over))
        await asyncio.gather(*(self._claim(kv, partition) for partition in claims))

    async def _members(self, kv: KeyValue) -> list[str]:
        prefix = f"{self._service}.member."
        info = await self._js.stream_info(
            f"KV_{LEASE_BUCKET}", subjects_filter=f"$KV.{LEASE_BUCKET}.{prefix}>"
        )
        members = {self.replica}  # just written; a lagging listing must not drop it
        for subject in info.state.subjects or {}:
            key = subject.removeprefix(f"$KV.{LEASE_BUCKET}.")
            try:
                await kv.get(key)
            except (nats.js.errors.KeyDeletedError, nats.js.errors.KeyNotFoundError):
                continue  # a replica that left (its delete marker outlives it a while)
            members.add(key.removeprefix(prefix))
        return sorted(members)

    async def _claim(self, kv: KeyValue, partition: int) -> None:
        key = self._partition_key(partition)
        if partition not in self._held:
            try:
                revision = await kv.create(key, self.replica.encode())
            except nats.js.errors.KeyWrongLastSequenceError:
                entry = await kv.get(key)
                if entry.value != self.replica.encode() or entry.revision is None:
                    return  # another replica still holds it: it gives it up on its round
                # This id's previous process died holding it (same host and pid, or the
                # operator's explicit id): take it back without waiting for the expiry.
                revision = await kv.update(key, self.replica.encode(), last=entry.revision)
            self._held[partition] = revision
        self._working.add(partition)
        self._log.info("partition acquired", partition=partition)
        try:
            await self._acquire(partition)
        except Exception:
            # Half-started work must not keep the lease: give it back for a retry.
            self._log.exception("starting work on a partition failed", partition=partition)
            self._hand_over(partition, lost=False)

    async def stop(self) -> None:
        """Stop working on every partition, hand them back and leave the members."""
        await cancel_and_wait(self._tasks)
        self._tasks = []
        for partition in sorted(self._working):
            self._hand_over(partition, lost=False)
        await asyncio.gather(*list(self._handing_over.values()))
        if self._kv is not None:
            with contextlib.suppress(Exception):  # NATS away: the key expires on its own
                await self._kv.delete(self._member_key(self.replica))
