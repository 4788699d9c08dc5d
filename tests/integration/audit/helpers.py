"""Shared pieces of the audit tests: events to publish and ways to watch the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.system import TradingResumed, TradingSuspended

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def suspended(n: int, account: str = "5WT00001") -> TradingSuspended:
    """The n-th test event: small, valid, distinct, one second apart."""
    return TradingSuspended(
        occurred_at=START + timedelta(seconds=n),
        producer="test",
        account_id=account,
        correlation_id=new_event_id(),
        reason=ErrorKind.BROKER_UNAVAILABLE,
        message=f"broker unreachable #{n}",
    )


def resumed(n: int, account: str = "5WT00001", **causation: Any) -> TradingResumed:
    return TradingResumed(
        occurred_at=START + timedelta(seconds=n),
        producer="test",
        account_id=account,
        correlation_id=causation.get("correlation_id", new_event_id()),
        causation_id=causation.get("causation_id"),
        message=f"broker back #{n}",
    )


async def row_count(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT count(*) FROM events")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def wait_for_rows(dsn: str, expected: int, timeout_s: float = 120.0) -> int:
    """Poll until the log holds ``expected`` rows (or the timeout); return the count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    count = -1
    while loop.time() < deadline:
        try:
            count = await row_count(dsn)
        except psycopg.OperationalError:
            count = -1
        if count >= expected:
            return count
        await asyncio.sleep(0.1)
    return count


async def logged_ids(dsn: str) -> list[tuple[int, str]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT position, event_id::text FROM events ORDER BY position")
        return [(int(p), str(e)) for p, e in await cur.fetchall()]
