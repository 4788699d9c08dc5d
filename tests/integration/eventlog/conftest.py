"""A fresh, migrated event log database per test, and small event builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import uuid4

import pytest
from psycopg import AsyncConnection

from libs.contracts.envelope import Event
from libs.eventlog.migrate import migrate
from libs.eventlog.records import EventRecord, record_from_event
from libs.eventlog.store import EventLog
from libs.runtime.servers import PostgresProcess

START = datetime(2026, 3, 20, 13, 30, tzinfo=UTC)


class Ping(Event):
    """A test-local event: the log must not depend on the concrete contracts."""

    type: Literal["Ping"] = "Ping"
    n: int
    note: str = ""


class Pong(Event):
    type: Literal["Pong"] = "Pong"
    reply_to: int


def ping(n: int, *, account: str | None = "5WT00001", **fields: Any) -> Ping:
    return Ping(
        n=n,
        account_id=account,
        occurred_at=START + timedelta(seconds=n),
        producer="test",
        correlation_id=uuid4(),
        **fields,
    )


def pings(first: int, count: int) -> list[EventRecord]:
    """``count`` fresh Ping records numbered from ``first``."""
    return [record_from_event(ping(n)) for n in range(first, first + count)]


@pytest.fixture
async def log_url(postgres_server: PostgresProcess) -> str:
    """A database of the test's own (the log cannot be emptied), migrated."""
    url = postgres_server.create_database(f"el_{uuid4().hex[:20]}")
    await migrate(url)
    return url


@pytest.fixture
async def conn(log_url: str) -> AsyncIterator[AsyncConnection[Any]]:
    async with await AsyncConnection.connect(log_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def log(conn: AsyncConnection[Any]) -> EventLog:
    return EventLog(conn)


async def all_rows(conn: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cur = await conn.execute("SELECT position, event_id, type FROM events ORDER BY position")
    return await cur.fetchall()


async def tamper(conn: AsyncConnection[Any], sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run ``sql`` with the append-only triggers off, as a superuser could."""
    await conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
    try:
        await conn.execute(sql, params)
    finally:
        await conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
