"""The database itself refuses to change or remove a row of the log."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from libs.eventlog.errors import AppendOnlyViolation, translated_errors
from libs.eventlog.store import EventLog
from tests.integration.eventlog.conftest import all_rows, pings

CHANGES = {
    "UPDATE": "UPDATE events SET type = 'Forged'",
    "DELETE": "DELETE FROM events",
    "TRUNCATE": "TRUNCATE events",
}


@pytest.mark.parametrize("operation", CHANGES)
async def test_changes_are_rejected_on_an_empty_table(
    conn: AsyncConnection[Any], operation: str
) -> None:
    with pytest.raises(psycopg.Error, match=f"events is append-only: {operation} rejected"):
        await conn.execute(CHANGES[operation])


@pytest.mark.parametrize("operation", CHANGES)
async def test_changes_are_rejected_and_the_rows_stay(
    log: EventLog, conn: AsyncConnection[Any], operation: str
) -> None:
    await log.append(pings(1, 3))
    before = await all_rows(conn)
    with pytest.raises(psycopg.Error, match=f"events is append-only: {operation} rejected"):
        await conn.execute(CHANGES[operation])
    assert await all_rows(conn) == before


async def test_a_change_matching_no_row_is_rejected_too(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    await log.append(pings(1, 1))
    with pytest.raises(psycopg.Error, match="append-only: DELETE rejected"):
        await conn.execute("DELETE FROM events WHERE position = -1")


async def test_the_rejection_becomes_an_append_only_violation_at_the_boundary(
    conn: AsyncConnection[Any],
) -> None:
    with (
        pytest.raises(AppendOnlyViolation, match="events is append-only: UPDATE rejected"),
        translated_errors(),
    ):
        await conn.execute("UPDATE events SET type = 'Forged' WHERE false")
