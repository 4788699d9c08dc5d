"""The bus over a real JetStream: dedupe, order, dead letters, request-reply, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest

from libs.contracts.commands import GetOrders, OrderListReply, VerifyEventLog, VerifyReply
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind, NotFound, ServiceUnavailable
from libs.contracts.partitions import partition_of
from libs.contracts.subjects import account_event_subject
from libs.contracts.system import TradingSuspended
from libs.runtime.bus import (
    BUSINESS_STREAM,
    DEAD_LETTER_STREAM,
    DLQ_ERROR_HEADER,
    Bus,
    ConsumerSpec,
    Delivery,
    dead_letter_subject,
)
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.servers import ServerProcess

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def suspended(account: str = "5WT00001", n: int = 0) -> TradingSuspended:
    return TradingSuspended(
        occurred_at=NOW,
        producer="test",
        account_id=account,
        correlation_id=new_event_id(),
        reason=ErrorKind.BROKER_UNAVAILABLE,
        message=f"broker unreachable #{n}",
    )


@pytest.fixture
async def bus(nats_factory: Callable[[], ServerProcess]) -> AsyncIterator[Bus]:
    server = nats_factory()
    bus = await Bus.connect(server.url, "test", metrics=ServiceMetrics("test"))
    yield bus
    await bus.close()


async def stream_messages(bus: Bus, stream: str) -> int:
    info = await bus.js.stream_info(stream)
    return int(info.state.messages)


async def test_a_republished_event_is_dropped(bus: Bus) -> None:
    event = suspended()
    first = await bus.publish(event)
    again = await bus.publish(event)
    assert not first.duplicate
    assert again.duplicate
    assert again.sequence == first.sequence
    assert await stream_messages(bus, BUSINESS_STREAM.name) == 1


async def test_pipelined_publish_keeps_order(bus: Bus) -> None:
    events = [suspended(n=i) for i in range(500)]
    acks = await bus.publish_many(events)
    assert [a.sequence for a in acks] == list(range(1, 501))


async def test_consumer_sees_events_in_stream_order_and_acks(bus: Bus) -> None:
    events = [suspended(n=i) for i in range(50)]
    await bus.publish_many(events)
    seen: list[Event] = []
    done = asyncio.Event()

    async def handle(event: Event, delivery: Delivery) -> None:
        seen.append(event)
        if len(seen) == len(events):
            done.set()

    consumer = await bus.consume(ConsumerSpec(durable="order-test"), handle)
    await asyncio.wait_for(done.wait(), timeout=30)
    await consumer.stop()
    assert [e.event_id for e in seen] == [e.event_id for e in events]
    info = await bus.js.consumer_info(BUSINESS_STREAM.name, "order-test")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_malformed_message_is_dead_lettered_and_the_consumer_goes_on(bus: Bus) -> None:
    await bus.js.publish(
        account_event_subject("5WT00001", "system", "TradingSuspended"), b"{not json"
    )
    good = suspended(n=1)
    await bus.publish(good)
    handled: list[Event] = []
    done = asyncio.Event()

    async def handle(event: Event, delivery: Delivery) -> None:
        handled.append(event)
        done.set()

    spec = ConsumerSpec(durable="dlq-test", max_deliver=3, backoff=(0.05,))
    consumer = await bus.consume(spec, handle)
    await asyncio.wait_for(done.wait(), timeout=30)
    for _ in range(200):
        if await stream_messages(bus, DEAD_LETTER_STREAM.name) == 1:
            break
        await asyncio.sleep(0.05)
    await consumer.stop()

    assert [e.event_id for e in handled] == [good.event_id]
    parked = await bus.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject("dlq-test"))
    assert parked.data == b"{not json"
    assert parked.headers is not None
    assert "InvalidPayload" in parked.headers[DLQ_ERROR_HEADER] or parked.headers[DLQ_ERROR_HEADER]
    assert bus.metrics is not None
    text = generate_latest(bus.metrics.registry).decode()
    assert 'senex_dead_letters_total{consumer="dlq-test",service="test"} 1.0' in text


async def test_a_failing_handler_is_retried_then_dead_lettered(bus: Bus) -> None:
    await bus.publish(suspended())
    attempts: list[int] = []

    async def handle(event: Event, delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        raise RuntimeError("projection store down")

    spec = ConsumerSpec(durable="retry-test", max_deliver=3, backoff=(0.05, 0.1))
    consumer = await bus.consume(spec, handle)
    for _ in range(200):
        if await stream_messages(bus, DEAD_LETTER_STREAM.name) == 1:
            break
        await asyncio.sleep(0.05)
    await consumer.stop()
    assert attempts == [1, 2, 3]


async def test_request_reply_is_typed_both_ways(bus: Bus) -> None:
    async def verify(command: object) -> VerifyReply:
        assert isinstance(command, VerifyEventLog)
        if command.account_id == "MISSING":
            raise NotFound("no such account")
        return VerifyReply(ok=True, checked=3, message="chain intact")

    await bus.serve("audit", {"verify_event_log": verify})
    reply = await bus.request(VerifyEventLog(account_id="5WT00001"), VerifyReply)
    assert reply == VerifyReply(ok=True, checked=3, message="chain intact")
    with pytest.raises(NotFound, match="no such account"):
        await bus.request(VerifyEventLog(account_id="MISSING"), VerifyReply)


async def test_no_service_answering_is_a_typed_error(bus: Bus) -> None:
    with pytest.raises(ServiceUnavailable, match="no audit service"):
        await bus.request(VerifyEventLog(account_id="5WT00001"), VerifyReply, timeout=2)


async def test_a_command_waits_briefly_for_a_partition_changing_hands(bus: Bus) -> None:
    async def orders(command: object) -> OrderListReply:
        return OrderListReply(orders=())

    # Nobody answers when the request leaves; a replica takes the partition meanwhile.
    pending = asyncio.create_task(
        bus.request(GetOrders(account_id="5WT00001"), OrderListReply, timeout=5)
    )
    await asyncio.sleep(0.3)
    assert not pending.done()
    await bus.serve("execution", {"get_orders": orders}, partition=partition_of("5WT00001"))
    assert (await pending).orders == ()


async def test_a_service_that_is_not_partitioned_is_there_or_not(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the audit's commands retried like a partitioned service's, this one would
    # be retried for the whole minute and the bounded wait below would fail.
    monkeypatch.setattr("libs.runtime.bus.NO_RESPONDERS_GRACE_S", 60.0)
    with pytest.raises(ServiceUnavailable, match="no audit service"):
        await asyncio.wait_for(
            bus.request(VerifyEventLog(account_id="5WT00001"), VerifyReply, timeout=60),
            timeout=10,
        )


@pytest.mark.fault
async def test_publishing_resumes_after_nats_restarts(
    nats_factory: Callable[[], ServerProcess],
) -> None:
    server = nats_factory()
    bus = await Bus.connect(server.url, "restart-test")
    try:
        await bus.publish_many([suspended(n=i) for i in range(100)])
        server.kill()
        server.start()
        for _ in range(200):
            if bus.connected:
                break
            await asyncio.sleep(0.05)
        acks = await bus.publish_many([suspended(n=i) for i in range(100, 200)])
        assert acks[-1].sequence == 200
        assert await stream_messages(bus, BUSINESS_STREAM.name) == 200
    finally:
        await bus.close()
