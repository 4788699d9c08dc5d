"""The bus and the partition leases on a real three-node JetStream cluster.

Streams and the lease bucket keep three copies (R3): losing any one node, even the
leader of a stream, loses no acknowledged event, and a restarted node catches up.
Writes to a stream whose leader was lost wait for a new one (a Raft election:
nats-server's followers wait 4-9 s for a lost leader before they campaign), so a
replica keeps its leases through the loss of the bucket's leader only when its lease
ttl outlasts that wait; the loss of a follower costs nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.partitions import PARTITIONS
from libs.contracts.system import TradingSuspended
from libs.runtime.bus import BUSINESS_STREAM, MSG_ID, STREAMS, Bus, ConsumerSpec
from libs.runtime.follower import Follower
from libs.runtime.leases import LEASE_BUCKET, LEASE_TICK_S, LEASE_TTL_S, PartitionLeases
from libs.runtime.servers import EmbeddedNats, EmbeddedNatsCluster

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
#: Accounts spread over several partitions.
ACCOUNTS = [f"5WT{n:05d}" for n in range(8)]
#: Long enough for a Raft election (4-9 s) plus a reconnect; tests normally finish
#: far sooner.
FAILOVER_TIMEOUT_S = 45.0


@pytest.fixture
def cluster(server_dir: Path) -> Iterator[EmbeddedNatsCluster]:
    nodes = EmbeddedNatsCluster(server_dir / "cluster")
    nodes.start()
    yield nodes
    nodes.kill()


@pytest.fixture
async def bus(cluster: EmbeddedNatsCluster) -> AsyncIterator[Bus]:
    bus = await Bus.connect(cluster.url, "cluster-test", stream_replicas=3)
    yield bus
    await bus.close()


def suspended(n: int) -> TradingSuspended:
    return TradingSuspended(
        occurred_at=NOW,
        producer="test",
        account_id=ACCOUNTS[n % len(ACCOUNTS)],
        correlation_id=new_event_id(),
        reason=ErrorKind.BROKER_UNAVAILABLE,
        message=f"#{n}",
    )


async def until(condition: Callable[[], bool], timeout: float = FAILOVER_TIMEOUT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def leader_of(bus: Bus, stream: str) -> str:
    """The server name of ``stream``'s leader (a stream of this cluster has one)."""
    info = await bus.js.stream_info(stream)
    assert info.cluster is not None
    assert info.cluster.leader
    return info.cluster.leader


def node_index(cluster: EmbeddedNatsCluster, server_name: str) -> int:
    return cluster.nodes.index(cluster.node(server_name))


def local_stream_state(node: EmbeddedNats, stream: str) -> dict[str, Any]:
    """``stream``'s state in ``node``'s own copy, from its monitoring endpoint."""
    status, body = node.monitor("/jsz?accounts=true&streams=true")
    assert status == 200, body
    for account in body.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail["name"] == stream:
                state: dict[str, Any] = detail["state"]
                return state
    return {}


async def test_every_stream_is_created_with_three_replicas(
    cluster: EmbeddedNatsCluster, bus: Bus
) -> None:
    every_node = {node.server_name for node in cluster.nodes}
    for spec in STREAMS:
        info = await bus.js.stream_info(spec.name)
        assert info.config.num_replicas == 3, spec.name
        assert info.cluster is not None, spec.name
        assert info.cluster.leader is not None, spec.name
        peers = {peer.name for peer in info.cluster.replicas or []}
        assert {info.cluster.leader} | peers == every_node, spec.name
        assert all(peer.current for peer in info.cluster.replicas or []), spec.name


async def test_streams_declared_with_one_replica_are_raised_to_three(
    cluster: EmbeddedNatsCluster,
) -> None:
    single = await Bus.connect(cluster.url, "cluster-r1", stream_replicas=1)
    try:
        assert (await single.js.stream_info(BUSINESS_STREAM.name)).config.num_replicas == 1
        await single.publish(suspended(0))
    finally:
        await single.close()
    replicated = await Bus.connect(cluster.url, "cluster-r3", stream_replicas=3)
    try:
        for spec in STREAMS:
            info = await replicated.js.stream_info(spec.name)
            assert info.config.num_replicas == 3, spec.name
        assert (await replicated.js.stream_info(BUSINESS_STREAM.name)).state.messages == 1
    finally:
        await replicated.close()


class Recorder:
    """What a follower folded (exactly once per process) and reacted to (at least once)."""

    def __init__(self) -> None:
        self.folded: list[str] = []
        self.reacted: list[str] = []

    def apply(self, event: Event) -> None:
        self.folded.append(str(event.event_id))

    async def react(self, event: Event) -> None:
        self.reacted.append(str(event.event_id))


async def test_killing_the_stream_leader_loses_no_event_and_the_node_catches_up(
    cluster: EmbeddedNatsCluster, bus: Bus
) -> None:
    recorder = Recorder()
    # ack_wait bounds how long a delivery lost with the consumer's leader takes to return.
    spec = ConsumerSpec(durable="cluster-follower", ack_wait=5.0, backoff=(0.1,))
    follower = Follower(bus, spec.durable, recorder.apply, recorder.react, spec=spec)
    await follower.start()
    published: list[str] = []

    async def publish(first: int, count: int) -> None:
        events = [suspended(n) for n in range(first, first + count)]
        await bus.publish_many(events, timeout=FAILOVER_TIMEOUT_S)
        published.extend(str(event.event_id) for event in events)

    try:
        await publish(0, 40)
        await until(lambda: len(recorder.reacted) >= 40)

        leader = await leader_of(bus, BUSINESS_STREAM.name)
        lost = node_index(cluster, leader)
        cluster.kill_node(lost)
        # Acknowledged only once a new leader and one follower have stored them.
        for first in range(40, 100, 20):
            await publish(first, 20)
        assert await leader_of(bus, BUSINESS_STREAM.name) != leader

        await until(lambda: follower.last_sequence >= len(published))
        # Folded exactly once each, in a gapless run of stream positions.
        assert sorted(recorder.folded) == sorted(published)
        assert len(set(recorder.folded)) == len(recorder.folded) == follower.last_sequence
        # Reacted to at least once each (a delivery in flight at the kill may repeat).
        await until(lambda: set(recorder.reacted) == set(published))

        # The stream holds every event once, at positions 1..n with no gap.
        state = (await bus.js.stream_info(BUSINESS_STREAM.name)).state
        assert (state.first_seq, state.last_seq, state.messages) == (1, 100, 100)
        assert not state.num_deleted
        stored = [
            (await bus.js.get_msg(BUSINESS_STREAM.name, seq)).headers or {} for seq in range(1, 101)
        ]
        assert sorted(headers[MSG_ID] for headers in stored) == sorted(published)

        # The restarted node catches up with what it missed, and with what comes next.
        await asyncio.to_thread(cluster.start_node, lost)
        await publish(100, 20)
        node = cluster.nodes[lost]
        await until(lambda: local_stream_state(node, BUSINESS_STREAM.name).get("messages") == 120)
        caught_up = local_stream_state(node, BUSINESS_STREAM.name)
        assert (caught_up["first_seq"], caught_up["last_seq"]) == (1, 120)
        await until(lambda: follower.last_sequence == 120)
        await until(lambda: set(recorder.reacted) == set(published))
        assert len(recorder.folded) == 120
    finally:
        await follower.stop()


@dataclasses.dataclass
class LeaseLog:
    """What a replica's lease hooks were told, in order."""

    working: set[int] = dataclasses.field(default_factory=set)
    events: list[tuple[str, int, bool]] = dataclasses.field(default_factory=list)

    async def acquire(self, partition: int) -> None:
        self.working.add(partition)
        self.events.append(("acquire", partition, False))

    async def release(self, partition: int, lost: bool) -> None:
        self.working.discard(partition)
        self.events.append(("release", partition, lost))


@pytest.mark.parametrize(
    ("lose", "ttl", "tick"),
    [
        # A follower of the bucket: the leader and the other follower are a majority,
        # so refreshes never stop; the default timings suffice.
        ("a follower", LEASE_TTL_S, LEASE_TICK_S),
        # The bucket's leader: no refresh is stored until a new leader is elected (4-9 s
        # after the last heartbeat), so the replica keeps its partitions only if it may
        # go ttl - 2 * tick without a refresh. With the default (6 s, 1 s) it stops
        # working on all of them after 4 s and claims them again once the bucket has
        # its new leader; 12 s (what deploy/README.md advises on a cluster) rides
        # through, since a lease request gives up after a tick and the next one reaches
        # the new leader.
        ("the leader", 12.0, LEASE_TICK_S),
    ],
)
async def test_a_lone_replica_keeps_every_partition_when_a_node_is_lost(
    cluster: EmbeddedNatsCluster, bus: Bus, lose: str, ttl: float, tick: float
) -> None:
    log = LeaseLog()
    leases = PartitionLeases(
        bus, "svc", "only", acquire=log.acquire, release=log.release, ttl=ttl, tick=tick
    )
    await leases.start()
    try:
        assert leases.owned == set(range(PARTITIONS)) == log.working
        bucket = f"KV_{LEASE_BUCKET}"
        info = await bus.js.stream_info(bucket)
        assert info.config.num_replicas == 3
        assert info.cluster is not None
        assert info.cluster.leader is not None
        followers = [peer.name for peer in info.cluster.replicas or [] if peer.name]
        victim = info.cluster.leader if lose == "the leader" else followers[0]
        # Polled with a short timeout: a read sent as the node dies gets no answer.
        kv = await bus.nc.jetstream(timeout=1.0).key_value(LEASE_BUCKET)
        keys = [f"svc.partition.{p}" for p in range(PARTITIONS)]
        before = {key: (await kv.get(key)).revision or 0 for key in keys}

        cluster.kill_node(node_index(cluster, victim))
        refreshed: dict[str, int] = {}

        async def refreshed_after_the_loss() -> bool:
            for key in keys:
                if key not in refreshed:
                    try:
                        entry = await kv.get(key)
                    except Exception:  # no leader yet
                        return False
                    if entry.value == b"only" and (entry.revision or 0) > before[key]:
                        refreshed[key] = entry.revision or 0
            return len(refreshed) == len(keys)

        deadline = asyncio.get_running_loop().time() + FAILOVER_TIMEOUT_S
        while not await refreshed_after_the_loss():
            assert asyncio.get_running_loop().time() < deadline, "leases not refreshed"
            await asyncio.sleep(tick / 2)
        if lose == "the leader":
            assert (await leader_of(bus, bucket)) != victim
        # Held throughout: never released, not even for a moment.
        assert [e for e in log.events if e[0] == "release"] == []
        assert leases.owned == set(range(PARTITIONS)) == log.working
    finally:
        await leases.stop()
    assert log.working == set()
