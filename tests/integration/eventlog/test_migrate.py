"""Schema migrations: in order, once, concurrently safe, and never silently edited."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from psycopg import AsyncConnection
from typer.testing import CliRunner

from libs.cli.main import app
from libs.eventlog.errors import (
    MigrationChecksumMismatch,
    MigrationFailed,
    UnknownAppliedMigration,
)
from libs.eventlog.migrate import applied_migrations, load_migrations, migrate
from libs.runtime.servers import PostgresProcess


@pytest.fixture
def blank_url(postgres_server: PostgresProcess, request: pytest.FixtureRequest) -> str:
    """A database without any migration applied."""
    return postgres_server.create_database(f"mig_{request.node.name[-40:].lower()}")


async def applied_versions(url: str) -> list[tuple[int, str]]:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        return [(m.version, m.name) for m in await applied_migrations(conn)]


async def test_migrations_apply_in_order_and_are_recorded(blank_url: str) -> None:
    files = load_migrations()
    applied = await migrate(blank_url)
    assert [(m.version, m.name, m.checksum) for m in applied] == [
        (m.version, m.name, m.checksum) for m in files
    ]
    assert all(m.applied_at.tzinfo is not None for m in applied)
    assert await applied_versions(blank_url) == [(m.version, m.name) for m in files]


async def test_migrating_again_applies_nothing(blank_url: str) -> None:
    await migrate(blank_url)
    assert await migrate(blank_url) == []
    assert len(await applied_versions(blank_url)) == len(load_migrations())


async def test_concurrent_migrators_apply_each_migration_once(blank_url: str) -> None:
    results = await asyncio.gather(*(migrate(blank_url) for _ in range(4)))
    assert sorted(len(applied) for applied in results) == [0, 0, 0, len(load_migrations())]


async def test_an_edited_applied_migration_is_an_error(blank_url: str) -> None:
    await migrate(blank_url)
    edited = [replace(m, checksum="0" * 64) if m.version == 1 else m for m in load_migrations()]
    with pytest.raises(MigrationChecksumMismatch, match="0001_events was applied with checksum"):
        await migrate(blank_url, migrations=edited)


async def test_a_database_newer_than_the_code_is_an_error(blank_url: str) -> None:
    await migrate(blank_url)
    with pytest.raises(UnknownAppliedMigration, match="0002_append_only"):
        await migrate(blank_url, migrations=load_migrations()[:1])


async def test_a_failing_migration_keeps_earlier_ones_and_records_nothing_of_itself(
    blank_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT * FROM nowhere;")
    with pytest.raises(MigrationFailed, match=r"0002_bad failed .*\"nowhere\" does not exist"):
        await migrate(blank_url, migrations=load_migrations(tmp_path))
    assert await applied_versions(blank_url) == [(1, "good")]
    async with await AsyncConnection.connect(blank_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT to_regclass('half') IS NULL")
        assert await cur.fetchone() == (True,)


async def test_the_schema_has_the_indexes_audit_queries_need(log_url: str) -> None:
    async with await AsyncConnection.connect(log_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname"
        )
        definitions = " | ".join(row[0] for row in await cur.fetchall())
    assert "(account_id, occurred_at)" in definitions
    assert "(type, occurred_at)" in definitions
    assert "correlation_id" in definitions
    assert "UNIQUE INDEX events_event_id_key" in definitions


def invoke(*args: str, env: dict[str, Any] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


async def test_senex_db_migrate_reports_what_it_applied(blank_url: str) -> None:
    first = await asyncio.to_thread(invoke, "db", "migrate", "--database-url", blank_url)
    assert first.exit_code == 0, first.output
    assert "applied 0001_events" in first.stdout
    again = await asyncio.to_thread(invoke, "db", "migrate", env={"DATABASE_URL": blank_url})
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stdout


async def test_senex_db_migrate_fails_clearly_without_a_database(
    postgres_server: PostgresProcess,
) -> None:
    url = postgres_server.database_url("no_such_database")
    result = await asyncio.to_thread(invoke, "db", "migrate", "--database-url", url)
    assert result.exit_code == 1
    assert "migrate failed: database unavailable" in result.stderr
