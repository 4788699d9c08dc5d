"""Appending: gapless positions, one hash chain, each event once."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from libs.eventlog.canonical import GENESIS_HASH, row_hash
from libs.eventlog.errors import (
    EventLogUnavailable,
    InvalidBatch,
    InvalidRecord,
    PositionConflict,
    PositionGap,
)
from libs.eventlog.records import (
    DUPLICATE_TYPE,
    MALFORMED_TYPE,
    EventRecord,
    Head,
    malformed_record,
    record_from_event,
)
from libs.eventlog.store import EventLog
from libs.eventlog.verify import verify_chain
from libs.runtime.servers import PostgresProcess
from tests.integration.eventlog.conftest import Pong, all_rows, ping, pings


def positioned(records: list[EventRecord], first: int) -> list[EventRecord]:
    return [
        EventRecord(r.event_id, r.type, r.account_id, r.occurred_at, r.payload, r.metadata, p)
        for p, r in enumerate(records, start=first)
    ]


async def test_an_empty_log_has_the_genesis_head(log: EventLog) -> None:
    assert await log.head() == Head(0, GENESIS_HASH)


async def test_batches_get_gapless_positions_from_1_and_one_valid_chain(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    batches = [pings(1, 3), pings(4, 1), pings(5, 5)]
    for batch in batches:
        await log.append(batch)
    stored = await log.read(1, 100)
    assert [e.position for e in stored] == list(range(1, 10))
    assert [e.event_id for e in stored] == [r.event_id for b in batches for r in b]
    prev = GENESIS_HASH
    for event in stored:
        assert event.prev_hash == prev
        assert event.hash == row_hash(
            prev,
            event.position,
            str(event.event_id),
            event.type,
            event.account_id,
            event.occurred_at,
            event.payload,
            event.metadata,
        )
        prev = event.hash
    assert await log.head() == Head(9, prev)
    assert (await verify_chain(conn)).ok


async def test_the_result_lists_rows_written_and_the_new_head(log: EventLog) -> None:
    batch = pings(1, 2)
    result = await log.append(batch)
    assert [(a.position, a.event_id) for a in result.appended] == [
        (1, batch[0].event_id),
        (2, batch[1].event_id),
    ]
    assert result.duplicates == ()
    assert result.head == await log.head()


async def test_an_event_twice_in_one_batch_is_stored_once(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    first, second = pings(1, 2)
    result = await log.append([first, second, first])
    assert result.duplicates == (first.event_id,)
    assert [row[1] for row in await all_rows(conn)] == [first.event_id, second.event_id]


async def test_an_event_appended_again_later_is_stored_once(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    batch = pings(1, 3)
    await log.append(batch)
    head = await log.head()
    again = await log.append([*batch, *pings(4, 1)])
    assert again.duplicates == tuple(r.event_id for r in batch)
    assert [a.position for a in again.appended] == [4]
    assert len(await all_rows(conn)) == 4
    only_duplicates = await log.append(batch[:1])
    assert only_duplicates.appended == ()
    assert only_duplicates.head == Head(4, (await log.head()).hash) != head


async def test_events_from_contract_models_keep_their_envelope(log: EventLog) -> None:
    cause = ping(1)
    reply = Pong(
        reply_to=1,
        account_id=None,
        occurred_at=datetime(2026, 3, 20, 9, 30, tzinfo=UTC),
        producer="pong-service",
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
    )
    await log.append([record_from_event(cause), record_from_event(reply)])
    stored = (await log.read())[1]
    assert (stored.event_id, stored.type, stored.account_id) == (reply.event_id, "Pong", None)
    assert stored.occurred_at == reply.occurred_at
    assert stored.payload == {"reply_to": 1}
    assert stored.correlation_id == str(cause.correlation_id)
    assert stored.metadata["causation_id"] == str(cause.event_id)
    assert stored.metadata["producer"] == "pong-service"


async def test_payloads_that_jsonb_rewrites_still_verify(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    payload: dict[str, object] = {
        "legs": [{"strike": "480.00", "qty": -1, "greeks": {"delta": -0.31, "vega": 0.05}}],
        "note": 'Schlusskurs é ü 漢字 😀 \u2028 tab\t "q" back\\slash \\u0000-lookalike',
        "max_int": 2**63 - 1,
        "max_uint": 2**64 - 1,
        "min_int": -(2**63),
        "credit": "0.4500",
        "tiny": 1e-7,
        "denormal": 5e-324,
        "exponent_form": 1.2345e17,
        "beyond_64_bits": 1.5e300,
        "largest": 1.7976931348623157e308,
        "negative_zero": -0.0,
        "integral_float": 100.0,
        "nothing": None,
        "empty": {"list": [], "object": {}},
        "z": 1,
        "aa": 2,
        "b": 3,
    }
    record = EventRecord(
        ping(1).event_id, "Raw", None, datetime(2026, 1, 1, tzinfo=UTC), payload, {}
    )
    await log.append([record])
    report = await verify_chain(conn)
    assert report.ok, report.summary()
    stored = (await log.read())[0].payload
    assert stored["credit"] == "0.4500"
    assert stored["max_uint"] == 2**64 - 1
    assert stored["exponent_form"] == 123450000000000000


async def test_a_record_jsonb_cannot_hold_is_refused_and_nothing_is_stored(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    good = pings(1, 1)[0]
    bad = EventRecord(ping(2).event_id, "Ping", None, good.occurred_at, {"n": 2**70}, {})
    with pytest.raises(InvalidRecord, match=r"event .*: \$\.n: integer"):
        await log.append([good, bad])
    assert await all_rows(conn) == []


async def test_a_malformed_message_is_stored_flagged_and_verbatim(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    raw = b"\x00\xffnot json"
    await log.append(pings(1, 1))
    record = malformed_record(
        raw, reason="not JSON", occurred_at=datetime(2026, 3, 20, tzinfo=UTC), position=2
    )
    await log.append([record])
    stored = (await log.read())[1]
    assert stored.malformed
    assert stored.type == MALFORMED_TYPE
    assert stored.metadata["reason"] == "not JSON"
    assert base64.b64decode(str(stored.metadata["raw"])) == raw
    assert (await verify_chain(conn)).ok


async def test_supplied_positions_must_continue_the_head(log: EventLog) -> None:
    await log.append(positioned(pings(1, 3), 1))
    with pytest.raises(PositionGap, match="next position is 4"):
        await log.append(positioned(pings(10, 2), 5))
    result = await log.append(positioned(pings(10, 2), 4))
    assert [a.position for a in result.appended] == [4, 5]


async def test_a_redelivered_batch_with_positions_is_a_no_op(log: EventLog) -> None:
    batch = positioned(pings(1, 4), 1)
    await log.append(batch[:3])
    head = await log.head()
    result = await log.append(batch)  # positions 1-3 again, then 4
    assert result.duplicates == tuple(r.event_id for r in batch[:3])
    assert [a.position for a in result.appended] == [4]
    assert (await log.read(1, 10))[2].hash == head.hash


async def test_a_stored_position_offered_with_another_event_is_a_conflict(
    log: EventLog,
) -> None:
    await log.append(positioned(pings(1, 2), 1))
    with pytest.raises(PositionConflict, match="position 2 already holds event"):
        await log.append(positioned(pings(7, 1), 2))


async def test_positions_must_be_all_supplied_or_all_assigned(log: EventLog) -> None:
    mixed = [*positioned(pings(1, 1), 1), *pings(2, 1)]
    with pytest.raises(InvalidBatch, match="either all records carry one or none"):
        await log.append(mixed)


async def test_a_republished_event_at_a_new_position_leaves_a_marker(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    original = pings(1, 1)[0]
    await log.append(positioned([original], 1))
    result = await log.append(positioned([original, *pings(2, 1)], 2))
    assert result.duplicates == (original.event_id,)
    marker = (await log.read())[1]
    assert (marker.position, marker.type) == (2, DUPLICATE_TYPE)
    assert marker.metadata["duplicate_of"] == str(original.event_id)
    redelivered = await log.append(positioned([original], 2))
    assert redelivered.appended == ()
    assert [row[0] for row in await all_rows(conn)] == [1, 2, 3]
    assert (await verify_chain(conn)).ok


async def test_concurrent_appenders_produce_one_gapless_valid_chain(log_url: str) -> None:
    async def appender(first: int) -> None:
        async with await AsyncConnection.connect(log_url, autocommit=True) as own:
            log = EventLog(own)
            for start in range(first, first + 200, 20):
                await log.append(pings(start, 20))

    await asyncio.gather(appender(0), appender(1000), appender(2000))
    async with await AsyncConnection.connect(log_url, autocommit=True) as conn:
        rows = await all_rows(conn)
        report = await verify_chain(conn)
    assert [row[0] for row in rows] == list(range(1, 601))
    assert report.ok, report.summary()


async def test_an_append_inside_a_rolled_back_transaction_leaves_nothing(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    class Abort(Exception):
        pass

    async def append_then_fail() -> None:
        async with conn.transaction():
            await log.append(pings(1, 2))
            raise Abort

    with pytest.raises(Abort):
        await append_then_fail()
    assert await log.head() == Head(0, GENESIS_HASH)


async def test_a_connection_without_autocommit_is_refused(log_url: str) -> None:
    async with await AsyncConnection.connect(log_url) as conn:
        with pytest.raises(ValueError, match="autocommit"):
            EventLog(conn)


async def test_streaming_reads_every_row_in_pages(log: EventLog) -> None:
    await log.append(pings(1, 25))
    positions = [event.position async for event in log.stream(3, batch_size=7)]
    assert positions == list(range(3, 26))
    assert [e.position for e in await log.read(24, limit=5)] == [24, 25]


async def test_a_dropped_connection_fails_the_append_and_nothing_of_it_is_stored(
    log_url: str,
) -> None:
    async with await AsyncConnection.connect(log_url, autocommit=True) as conn:
        await EventLog(conn).append(pings(1, 3))
        async with await AsyncConnection.connect(log_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(EventLogUnavailable):
            await EventLog(conn).append(pings(4, 2))
    async with await AsyncConnection.connect(log_url, autocommit=True) as conn:
        result = await EventLog(conn).append(pings(4, 2))
        assert [a.position for a in result.appended] == [4, 5]
        assert (await verify_chain(conn)).ok


async def test_a_missing_schema_is_named(postgres_server: PostgresProcess) -> None:
    from libs.eventlog.errors import SchemaMissing

    url = postgres_server.create_database("el_unmigrated")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        with pytest.raises(SchemaMissing, match="senex db migrate"):
            await EventLog(conn).head()
