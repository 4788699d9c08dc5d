"""The audit recorder copies the business stream into the event log: all, once, in order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
from prometheus_client import generate_latest

from libs.contracts.subjects import account_event_subject
from libs.eventlog.migrate import migrate
from libs.eventlog.verify import verify_chain
from libs.runtime.bus import BUSINESS_STREAM, Bus
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.servers import PostgresProcess, ServerProcess, free_port
from services.audit.recorder import Recorder
from tests.integration.audit.helpers import logged_ids, suspended, wait_for_rows

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def nats(nats_factory: Callable[[], ServerProcess]) -> ServerProcess:
    return nats_factory()


@pytest.fixture
async def db(postgres_factory: Callable[[], PostgresProcess]) -> tuple[PostgresProcess, str]:
    server = postgres_factory()
    dsn = server.create_database("audit")
    await migrate(dsn)
    return server, dsn


@pytest.fixture
async def bus(nats: ServerProcess) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats.url, "publisher")
    yield bus
    await bus.close()


async def assert_log_is(dsn: str, published: list[str]) -> None:
    """The log holds exactly ``published``, at positions 1..n, with a valid chain."""
    rows = await logged_ids(dsn)
    assert [p for p, _ in rows] == list(range(1, len(published) + 1))
    assert [e for _, e in rows] == published
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        report = await verify_chain(conn)
    assert report.ok, report.summary()


async def test_ten_thousand_events_become_ten_thousand_rows_in_stream_order(
    bus: Bus, db: tuple[PostgresProcess, str]
) -> None:
    _, dsn = db
    events = [suspended(n) for n in range(10_000)]
    acks = await bus.publish_many(events)
    metrics = ServiceMetrics("audit")
    recorder = Recorder(bus, dsn, metrics)
    await recorder.start()
    try:
        assert await wait_for_rows(dsn, 10_000) == 10_000
    finally:
        await recorder.stop()
    by_sequence = sorted(zip((a.sequence for a in acks), events, strict=True))
    await assert_log_is(dsn, [str(e.event_id) for _, e in by_sequence])
    text = generate_latest(metrics.registry).decode()
    assert "senex_audit_recorded_total 10000.0" in text


async def test_a_republished_event_is_stored_once(
    bus: Bus, db: tuple[PostgresProcess, str]
) -> None:
    _, dsn = db
    event = suspended(1)
    await bus.publish(event)
    await bus.publish(event)
    await bus.publish(suspended(2))
    recorder = Recorder(bus, dsn, ServiceMetrics("audit"))
    await recorder.start()
    try:
        assert await wait_for_rows(dsn, 2) == 2
        await asyncio.sleep(0.5)
    finally:
        await recorder.stop()
    rows = await logged_ids(dsn)
    assert len(rows) == 2
    assert rows[0][1] == str(event.event_id)


async def test_a_malformed_message_is_stored_flagged_and_counted(
    bus: Bus, db: tuple[PostgresProcess, str]
) -> None:
    _, dsn = db
    await bus.publish(suspended(1))
    await bus.js.publish(
        account_event_subject("5WT00001", "system", "TradingSuspended"), b"\x00not json"
    )
    await bus.publish(suspended(2))
    metrics = ServiceMetrics("audit")
    recorder = Recorder(bus, dsn, metrics)
    await recorder.start()
    try:
        assert await wait_for_rows(dsn, 3) == 3
    finally:
        await recorder.stop()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT position, type, metadata->>'malformed', metadata->>'raw_encoding', account_id"
            " FROM events ORDER BY position"
        )
        rows = await cur.fetchall()
    assert rows[1] == (2, "MalformedMessage", "true", "base64", "5WT00001")
    assert [r[2] for r in rows] == ["false", "true", "false"]
    assert "senex_audit_malformed_total 1.0" in generate_latest(metrics.registry).decode()


def start_audit_process(nats_url: str, dsn: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "DATABASE_URL": dsn,
        "SENEX_METRICS_PORT": str(free_port()),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.audit"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


@pytest.mark.fault
async def test_recorder_killed_mid_batch_resumes_without_loss_or_duplicate(
    bus: Bus, nats: ServerProcess, db: tuple[PostgresProcess, str], tmp_path: Path
) -> None:
    _, dsn = db
    events = [suspended(n) for n in range(20_000)]
    acks = await bus.publish_many(events)
    process = start_audit_process(nats.url, dsn, tmp_path / "audit.log")
    try:
        # Kill it while it is recording: some rows in, not all.
        recorded = await wait_for_rows(dsn, 2_000)
        assert 0 < recorded < 20_000
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process = start_audit_process(nats.url, dsn, tmp_path / "audit.log")
        assert await wait_for_rows(dsn, 20_000) == 20_000
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    by_sequence = sorted(zip((a.sequence for a in acks), events, strict=True))
    await assert_log_is(dsn, [str(e.event_id) for _, e in by_sequence])


@pytest.mark.fault
async def test_nats_restarted_mid_stream_loses_nothing(
    nats: ServerProcess, db: tuple[PostgresProcess, str]
) -> None:
    _, dsn = db
    publisher = await Bus.connect(nats.url, "publisher")
    recorder_bus = await Bus.connect(nats.url, "audit")
    recorder = Recorder(recorder_bus, dsn, ServiceMetrics("audit"))
    await recorder.start()
    published: list[str] = []
    try:
        for chunk in range(10):
            batch = [suspended(chunk * 500 + n) for n in range(500)]
            await publisher.publish_many(batch)
            published.extend(str(e.event_id) for e in batch)
            if chunk == 4:
                nats.kill()
                nats.start()
        assert await wait_for_rows(dsn, 5_000) == 5_000
    finally:
        await recorder.stop()
        await recorder_bus.close()
        await publisher.close()
    info_rows = await logged_ids(dsn)
    assert sorted(e for _, e in info_rows) == sorted(published)
    await assert_log_is(dsn, [e for _, e in info_rows])


@pytest.mark.fault
async def test_postgres_restarted_the_recorder_waits_and_resumes(
    bus: Bus, db: tuple[PostgresProcess, str]
) -> None:
    server, dsn = db
    recorder = Recorder(bus, dsn, ServiceMetrics("audit"))
    await recorder.start()
    first = [suspended(n) for n in range(1_000)]
    second = [suspended(n) for n in range(1_000, 2_000)]
    try:
        await bus.publish_many(first)
        assert await wait_for_rows(dsn, 1_000) == 1_000
        await asyncio.to_thread(server.kill)
        await bus.publish_many(second)
        await asyncio.sleep(1.0)  # the recorder meets a dead database and must wait
        assert recorder.running
        await asyncio.to_thread(server.start)
        assert await wait_for_rows(dsn, 2_000) == 2_000
    finally:
        await recorder.stop()
    info = await bus.js.stream_info(BUSINESS_STREAM.name)
    assert info.state.messages == 2_000
    await assert_log_is(dsn, [str(e.event_id) for e in first + second])


async def test_a_parsed_message_the_log_cannot_store_is_kept_flagged(
    bus: Bus, db: tuple[PostgresProcess, str]
) -> None:
    _, dsn = db
    nul = suspended(2).model_copy(update={"message": "broker\u0000unreachable"})
    await bus.publish(suspended(1))
    await bus.publish(nul)  # valid to the contracts; jsonb cannot hold NUL
    await bus.publish(suspended(3))
    metrics = ServiceMetrics("audit")
    recorder = Recorder(bus, dsn, metrics)
    await recorder.start()
    try:
        assert await wait_for_rows(dsn, 3) == 3
    finally:
        await recorder.stop()
    assert recorder.running is False
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT type, event_id::text, metadata->>'raw' FROM events ORDER BY position"
        )
        rows = await cur.fetchall()
    assert [r[0] for r in rows] == ["TradingSuspended", "MalformedMessage", "TradingSuspended"]
    assert rows[1][1] == str(nul.event_id)
    assert "broker\\u0000unreachable" in rows[1][2]  # the message as published
    assert "senex_audit_malformed_total 1.0" in generate_latest(metrics.registry).decode()
