"""Partition leases over a real JetStream: sharing, hand-over, expiry of a dead holder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from libs.contracts.partitions import PARTITIONS
from libs.runtime.bus import Bus
from libs.runtime.leases import PartitionLeases
from libs.runtime.servers import ServerProcess

TTL = 1.5
TICK = 0.3


@dataclass
class Replica:
    """One replica's leases and what its hooks were told, in order."""

    bus: Bus
    leases: PartitionLeases
    working: set[int] = field(default_factory=set)
    log: list[tuple[str, int]] = field(default_factory=list)


StartReplica = Callable[[str], Awaitable[Replica]]


@pytest.fixture
def nats(nats_factory: Callable[[], ServerProcess]) -> ServerProcess:
    return nats_factory()


@pytest.fixture
async def replicas(nats: ServerProcess) -> AsyncIterator[StartReplica]:
    started: list[Replica] = []

    async def start(replica_id: str) -> Replica:
        bus = await Bus.connect(nats.url, f"leases-{replica_id}")
        holder: dict[str, Replica] = {}

        async def acquire(partition: int) -> None:
            r = holder["r"]
            assert partition not in r.working
            r.working.add(partition)
            r.log.append(("acquire", partition))

        async def release(partition: int, lost: bool) -> None:
            r = holder["r"]
            r.working.discard(partition)
            r.log.append(("release", partition))

        leases = PartitionLeases(
            bus, "svc", replica_id, acquire=acquire, release=release, ttl=TTL, tick=TICK
        )
        replica = holder["r"] = Replica(bus, leases)
        await leases.start()
        started.append(replica)
        return replica

    yield start
    for replica in started:
        await replica.leases.stop()
        await replica.bus.close()


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def disjoint_and_complete(*replicas: Replica) -> bool:
    sets = [r.working for r in replicas]
    union = set().union(*sets)
    return union == set(range(PARTITIONS)) and sum(map(len, sets)) == PARTITIONS


async def test_a_lone_replica_holds_every_partition_once_started(replicas: StartReplica) -> None:
    a = await replicas("a")
    assert a.working == set(range(PARTITIONS)) == set(a.leases.owned)


async def test_two_replicas_split_the_partitions_and_never_share_one(
    replicas: StartReplica,
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    overlaps: list[set[int]] = []

    async def watch() -> None:
        while True:
            if a.working & b.working:
                overlaps.append(a.working & b.working)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    await until(lambda: len(a.working) == len(b.working) == PARTITIONS // 2)
    watcher.cancel()
    assert overlaps == []
    assert disjoint_and_complete(a, b)
    # Every partition b took was first given up by a, which had taken all at its start.
    for partition in b.working:
        assert ("release", partition) in a.log


async def test_a_replica_that_stops_hands_its_partitions_to_the_other(
    replicas: StartReplica,
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await until(lambda: disjoint_and_complete(a, b) and len(b.working) == PARTITIONS // 2)
    await b.leases.stop()
    assert b.working == set()
    await until(lambda: a.working == set(range(PARTITIONS)), timeout=5 * TICK + 2)


async def test_a_killed_replicas_partitions_move_once_its_leases_expire(
    replicas: StartReplica,
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await until(lambda: disjoint_and_complete(a, b) and len(b.working) == PARTITIONS // 2)
    taken = set(b.working)
    # Killed: no hand-back, no refresh; its keys stay until they expire.
    await b.bus.nc.close()
    await asyncio.sleep(TTL / 2)
    assert not a.working & taken  # not before the dead holder's lease ran out
    await until(lambda: a.working == set(range(PARTITIONS)), timeout=TTL + 5)


async def test_a_replica_restarted_under_its_id_takes_its_partitions_back_at_once(
    replicas: StartReplica, nats: ServerProcess
) -> None:
    a = await replicas("a")
    await a.bus.nc.close()  # killed holding all sixteen
    again = await replicas("a")
    assert again.working == set(range(PARTITIONS))


async def test_a_replica_cut_off_from_nats_stops_working_before_its_leases_expire(
    replicas: StartReplica, nats: ServerProcess
) -> None:
    a = await replicas("a")
    nats.stop()
    try:
        # The server would let another replica claim them after TTL; a stops first.
        await until(lambda: a.working == set(), timeout=TTL + 2)
        assert {kind for kind, _ in a.log[-PARTITIONS:]} == {"release"}
    finally:
        nats.start()
    await until(lambda: a.working == set(range(PARTITIONS)), timeout=20)
