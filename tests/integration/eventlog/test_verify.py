"""`senex audit verify`: an intact log passes; a tampered one is named where it breaks."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from typer.testing import CliRunner

from libs.cli.main import app
from libs.eventlog.canonical import GENESIS_HASH, row_hash
from libs.eventlog.records import Head
from libs.eventlog.store import EventLog
from libs.eventlog.verify import ProblemKind, verify_chain
from libs.runtime.servers import PostgresProcess
from tests.integration.eventlog.conftest import pings, tamper


async def senex(*args: str) -> Any:
    """Run the CLI in a thread: it runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_an_intact_log_passes_with_its_head(log: EventLog, log_url: str) -> None:
    await log.append(pings(1, 4))
    await log.append(pings(5, 3))
    head = await log.head()
    result = await senex("audit", "verify", "--database-url", log_url)
    assert result.exit_code == 0, result.output
    assert f"7 rows checked, head position 7, head hash {head.hash.hex()}" in result.stdout


async def test_an_intact_log_as_json(log: EventLog, log_url: str) -> None:
    await log.append(pings(1, 2))
    result = await senex("audit", "verify", "--json", "--database-url", log_url)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True,
        "rows_checked": 2,
        "head_position": 2,
        "head_hash": (await log.head()).hash.hex(),
        "problem": None,
    }


async def test_an_empty_log_passes(log_url: str) -> None:
    result = await senex("audit", "verify", "--database-url", log_url)
    assert result.exit_code == 0
    assert "0 rows checked, head position 0" in result.stdout


async def test_an_altered_payload_is_named_by_position(
    log: EventLog, conn: AsyncConnection[Any], log_url: str
) -> None:
    await log.append(pings(1, 6))
    await tamper(conn, "UPDATE events SET payload = '{\"n\": 99}' WHERE position = 4")
    result = await senex("audit", "verify", "--database-url", log_url)
    assert result.exit_code == 1
    assert "BROKEN at position 4 (hash_mismatch)" in result.stderr
    as_json = await senex("audit", "verify", "--json", "--database-url", log_url)
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert report["problem"]["position"] == 4
    assert report["problem"]["kind"] == "hash_mismatch"
    assert (report["rows_checked"], report["head_position"]) == (3, 3)


async def test_the_installed_command_reports_tampering_too(
    log: EventLog, conn: AsyncConnection[Any], log_url: str
) -> None:
    await log.append(pings(1, 3))
    await tamper(conn, "UPDATE events SET account_id = 'OTHER' WHERE position = 2")
    senex_bin = Path(sys.executable).parent / "senex"
    proc = await asyncio.create_subprocess_exec(
        str(senex_bin),
        "audit",
        "verify",
        "--json",
        "--database-url",
        log_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await proc.communicate()
    assert proc.returncode == 1
    assert json.loads(stdout)["problem"]["position"] == 2


async def test_a_deleted_row_is_reported_as_a_gap(
    log: EventLog, conn: AsyncConnection[Any], log_url: str
) -> None:
    await log.append(pings(1, 5))
    await tamper(conn, "DELETE FROM events WHERE position = 3")
    result = await senex("audit", "verify", "--json", "--database-url", log_url)
    assert result.exit_code == 1
    problem = json.loads(result.stdout)["problem"]
    assert (problem["position"], problem["kind"]) == (3, "gap")
    assert "position 3 is missing" in problem["detail"]


async def test_a_log_not_starting_at_1_is_a_gap_at_1(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    await log.append(pings(1, 3))
    await tamper(conn, "DELETE FROM events WHERE position < 3")
    report = await verify_chain(conn)
    assert report.problem is not None
    assert (report.problem.position, report.problem.kind) == (1, ProblemKind.GAP)
    assert "positions 1..2 are missing" in report.problem.detail


async def test_a_row_altered_and_rehashed_breaks_the_link_to_the_next(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    await log.append(pings(1, 4))
    await tamper(conn, "UPDATE events SET payload = '{\"n\": 99}' WHERE position = 2")
    forged = (await log.read(2, 1))[0]
    rehashed = row_hash(
        forged.prev_hash,
        2,
        str(forged.event_id),
        forged.type,
        forged.account_id,
        forged.occurred_at,
        forged.payload,
        forged.metadata,
    )
    await tamper(conn, "UPDATE events SET hash = %s WHERE position = 2", (rehashed,))
    report = await verify_chain(conn)
    assert report.problem is not None
    assert (report.problem.position, report.problem.kind) == (3, ProblemKind.PREV_HASH_MISMATCH)
    assert report.last_good == Head(2, rehashed)


async def test_a_first_row_not_chained_to_the_genesis_is_reported(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    await log.append(pings(1, 2))
    await tamper(conn, "UPDATE events SET prev_hash = sha256('x'::bytea) WHERE position = 1")
    report = await verify_chain(conn)
    assert report.problem is not None
    assert (report.problem.position, report.problem.kind) == (1, ProblemKind.PREV_HASH_MISMATCH)
    assert "genesis" in report.problem.detail
    assert report.last_good == Head(0, GENESIS_HASH)


async def test_unreadable_stored_json_is_reported(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    await log.append(pings(1, 2))
    await tamper(conn, "UPDATE events SET payload = '{\"n\": 1e400}' WHERE position = 2")
    report = await verify_chain(conn)
    assert report.problem is not None
    assert (report.problem.position, report.problem.kind) == (2, ProblemKind.UNREADABLE)


async def test_verification_streams_across_many_fetches(
    log: EventLog, conn: AsyncConnection[Any]
) -> None:
    for first in range(1, 101, 25):
        await log.append(pings(first, 25))
    report = await verify_chain(conn, batch_size=7)
    assert (report.ok, report.rows_checked, report.last_good) == (True, 100, await log.head())


async def test_an_unmigrated_database_cannot_be_verified(
    postgres_server: PostgresProcess,
) -> None:
    url = postgres_server.create_database("el_verify_unmigrated")
    result = await senex("audit", "verify", "--database-url", url)
    assert result.exit_code == 2
    assert "senex db migrate" in result.stderr
    as_json = await senex("audit", "verify", "--json", "--database-url", url)
    assert json.loads(as_json.stdout)["ok"] is False
