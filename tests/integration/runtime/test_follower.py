"""The follower over a real JetStream: catch up, follow, restart, redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.partitions import PARTITIONS, partition_of
from libs.contracts.system import TradingSuspended
from libs.runtime.bus import Bus, ConsumerSpec
from libs.runtime.follower import Follower
from libs.runtime.servers import ServerProcess

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def suspended(n: int) -> TradingSuspended:
    return TradingSuspended(
        occurred_at=NOW,
        producer="test",
        account_id="5WT00001",
        correlation_id=new_event_id(),
        reason=ErrorKind.BROKER_UNAVAILABLE,
        message=f"#{n}",
    )


class Recorder:
    """A fold that counts every application, and the reactions it saw."""

    def __init__(self, fail_reactions: int = 0) -> None:
        self.folded: list[str] = []
        self.reacted: list[str] = []
        self.fail_reactions = fail_reactions

    def apply(self, event: Event) -> None:
        assert isinstance(event, TradingSuspended)
        self.folded.append(event.message)

    async def react(self, event: Event) -> None:
        assert isinstance(event, TradingSuspended)
        if self.fail_reactions > 0:
            self.fail_reactions -= 1
            raise RuntimeError("reaction failed")
        self.reacted.append(event.message)


@pytest.fixture
async def bus(nats_factory: Callable[[], ServerProcess]) -> AsyncIterator[Bus]:
    server = nats_factory()
    bus = await Bus.connect(server.url, "test")
    yield bus
    await bus.close()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


SPEC = ConsumerSpec(durable="follower-test", backoff=(0.1,))


async def test_catches_up_without_reacting_then_follows_live(bus: Bus) -> None:
    await bus.publish_many([suspended(n) for n in range(5)])
    recorder = Recorder()
    follower = Follower(bus, "follower-test", recorder.apply, recorder.react, spec=SPEC)
    assert not follower.caught_up
    await follower.start()
    assert follower.caught_up
    assert follower.last_sequence == follower.catch_up_end == 5
    assert recorder.folded == [f"#{n}" for n in range(5)]
    assert recorder.reacted == []

    await bus.publish_many([suspended(n) for n in range(5, 8)])
    await until(lambda: len(recorder.reacted) == 3)
    assert recorder.folded == [f"#{n}" for n in range(8)]
    assert recorder.reacted == ["#5", "#6", "#7"]
    assert follower.last_sequence == 8
    await follower.stop()


async def test_a_restart_rebuilds_state_and_reacts_only_to_what_was_not_acknowledged(
    bus: Bus,
) -> None:
    first = Recorder()
    follower = Follower(bus, "follower-test", first.apply, first.react, spec=SPEC)
    await follower.start()
    await bus.publish_many([suspended(n) for n in range(3)])
    await until(lambda: len(first.reacted) == 3)
    await follower.stop()

    # Published while the service is down: folded in catch-up, then reacted to once.
    await bus.publish_many([suspended(n) for n in range(3, 5)])
    second = Recorder()
    restarted = Follower(bus, "follower-test", second.apply, second.react, spec=SPEC)
    await restarted.start()
    assert second.folded == [f"#{n}" for n in range(5)]
    await until(lambda: len(second.reacted) == 2)
    await asyncio.sleep(0.3)
    assert second.reacted == ["#3", "#4"]  # the acknowledged #0-#2 are not re-enacted
    assert second.folded == [f"#{n}" for n in range(5)]  # folded once each
    await restarted.stop()


async def test_a_redelivered_event_is_folded_once_and_reacted_to_until_it_succeeds(
    bus: Bus,
) -> None:
    recorder = Recorder(fail_reactions=2)
    follower = Follower(bus, "follower-test", recorder.apply, recorder.react, spec=SPEC)
    await follower.start()
    await bus.publish(suspended(1))
    await until(lambda: recorder.reacted == ["#1"])
    assert recorder.folded == ["#1"]
    await follower.stop()


async def test_an_empty_stream_is_caught_up_at_once(bus: Bus) -> None:
    recorder = Recorder()
    follower = Follower(bus, "follower-test", recorder.apply, recorder.react, spec=SPEC)
    await follower.start()
    assert follower.caught_up
    assert follower.last_sequence == 0
    await follower.stop()


async def test_a_partition_takes_over_where_the_single_durable_stopped(bus: Bus) -> None:
    # The service used to react through one durable over everything; it acknowledged
    # #0-#2 and then stopped (upgrade): #3 and #4 arrived while nothing ran.
    old = Recorder()
    single = Follower(bus, "follower-test", old.apply, old.react, spec=SPEC)
    await single.start()
    await bus.publish_many([suspended(n) for n in range(3)])
    await until(lambda: len(old.reacted) == 3)
    await single.stop()
    await bus.publish_many([suspended(n) for n in range(3, 5)])

    new = Recorder()
    partitioned = Follower(bus, "follower-test", new.apply, new.react, spec=SPEC)
    await partitioned.start(react_to_all=False)
    await partitioned.react_to(partition_of("5WT00001"))
    await until(lambda: len(new.reacted) == 2)
    await asyncio.sleep(0.3)
    assert new.reacted == ["#3", "#4"]
    assert partitioned.reacting_to == {partition_of("5WT00001")}
    await partitioned.stop()


async def test_reactions_come_only_from_the_partitions_reacted_to(bus: Bus) -> None:
    recorder = Recorder()
    follower = Follower(bus, "follower-test", recorder.apply, recorder.react, spec=SPEC)
    await follower.start(react_to_all=False)
    other = (partition_of("5WT00001") + 1) % PARTITIONS
    await follower.react_to(other)
    await bus.publish(suspended(1))
    await until(lambda: follower.last_sequence == 1)
    await asyncio.sleep(0.3)
    assert recorder.folded == ["#1"]  # every account is folded
    assert recorder.reacted == []  # but its partition is someone else's
    await follower.stop_reacting(other)
    await follower.react_to(partition_of("5WT00001"))
    await until(lambda: recorder.reacted == ["#1"])
    await follower.stop()


async def test_a_publisher_folds_its_own_events_once_in_stream_order(bus: Bus) -> None:
    recorder = Recorder()
    follower = Follower(bus, "follower-test", recorder.apply, spec=SPEC)
    await follower.start()
    mine = [suspended(n) for n in range(3)]
    acks = await bus.publish_many(mine)
    await follower.fold_published(list(zip(mine, acks, strict=True)), timeout=10)
    # Folded on return, by the publisher or the reader: the state reads them next.
    assert recorder.folded == ["#0", "#1", "#2"]
    assert follower.last_sequence == acks[-1].sequence

    # Another process's event stored between: the publisher waits for the reader, which
    # folds both in stream order.
    other = await bus.publish(suspended(10))
    late = suspended(11)
    ack = await bus.publish(late)
    await follower.fold_published([(late, ack)], timeout=10)
    assert recorder.folded == ["#0", "#1", "#2", "#10", "#11"]
    assert other.sequence < ack.sequence == follower.last_sequence

    # The reader, getting the messages folded by their publisher, passes over them.
    await asyncio.sleep(0.3)
    assert recorder.folded == ["#0", "#1", "#2", "#10", "#11"]
    await follower.stop()


async def test_a_duplicate_is_waited_for_never_folded_from_the_object_in_hand(bus: Bus) -> None:
    recorder = Recorder()
    follower = Follower(bus, "follower-test", recorder.apply, spec=SPEC)
    await follower.start()
    first = suspended(1)
    ack = await bus.publish(first)
    await follower.fold_published([(first, ack)], timeout=10)
    # The same event id decided again with other content (a re-made decision).
    again = first.model_copy(update={"message": "#1 again"})
    duplicate = await bus.publish(again)
    assert duplicate.duplicate
    await follower.fold_published([(again, duplicate)], timeout=10)
    assert recorder.folded == ["#1"]
    await follower.stop()
