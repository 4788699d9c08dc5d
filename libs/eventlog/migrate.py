"""Versioned SQL migrations: ``migrations/NNNN_name.sql`` applied in order, once.

``schema_migrations`` records each applied file with its SHA-256. Applying is idempotent
and safe to run from several processes at once (they take turns on an advisory lock),
so every service may call `migrate` at start-up. Editing a file after it was applied is
an error, not a silent divergence between databases.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from libs.eventlog.errors import (
    InvalidMigrationFile,
    MigrationChecksumMismatch,
    MigrationFailed,
    UnknownAppliedMigration,
    translated_errors,
)

#: Advisory lock key serialising migrators: the bytes of "senexmig" as a bigint.
MIGRATION_LOCK_KEY = int.from_bytes(b"senexmig", "big")

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version, name, SQL and the SHA-256 (hex) of that SQL."""

    version: int
    name: str
    sql: str
    checksum: str


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


def load_migrations(directory: Traversable | Path | None = None) -> list[Migration]:
    """The migrations in ``directory`` (default: the packaged ones), by version.

    Line endings are normalised before the checksum, so a checkout with CRLF endings
    does not look like an edited migration.
    """
    source = directory if directory is not None else resources.files("libs.eventlog") / "migrations"
    found: dict[int, Migration] = {}
    for entry in source.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise InvalidMigrationFile(
                f"migration file {entry.name!r} is not named NNNN_lowercase_name.sql"
            )
        version = int(match["version"])
        if version == 0:
            raise InvalidMigrationFile(f"migration file {entry.name!r}: versions start at 1")
        if version in found:
            raise InvalidMigrationFile(
                f"migration version {version:04d} is claimed by {found[version].name!r} "
                f"and {match['name']!r}"
            )
        sql = entry.read_text(encoding="utf-8").replace("\r\n", "\n")
        checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        found[version] = Migration(version, match["name"], sql, checksum)
    return [found[version] for version in sorted(found)]


async def migrate(
    dsn: str, *, migrations: Sequence[Migration] | None = None
) -> list[AppliedMigration]:
    """Apply the pending migrations to the database at ``dsn``; return those applied now.

    Each migration runs in its own transaction together with its ``schema_migrations``
    row, so a failing one leaves the earlier ones applied and itself not at all.
    Raises `MigrationChecksumMismatch` when an applied file changed,
    `UnknownAppliedMigration` when the database is ahead of the code, and other
    `MigrationError`/`EventLogError` subclasses for the rest.
    """
    wanted = list(migrations) if migrations is not None else load_migrations()
    with translated_errors():
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        async with conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            try:
                await conn.execute(_CREATE_TABLE)
                done = {m.version: m for m in await applied_migrations(conn)}
                _check_applied(wanted, done)
                return [
                    await _apply(conn, migration)
                    for migration in wanted
                    if migration.version not in done
                ]
            finally:
                if not conn.closed and not conn.broken:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


#: `migrate` under the name the service runner imports, beside `migrate_sync`.
migrate_async = migrate


def migrate_sync(
    dsn: str, *, migrations: Sequence[Migration] | None = None
) -> list[AppliedMigration]:
    """`migrate` for synchronous callers (the CLI, ``senex up``); not inside an event loop."""
    return asyncio.run(migrate(dsn, migrations=migrations))


async def applied_migrations(conn: psycopg.AsyncConnection[Any]) -> list[AppliedMigration]:
    """The rows of ``schema_migrations`` by version (empty when the table is missing)."""
    with translated_errors():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        exists = await cur.fetchone()
        if exists is None or not exists[0]:
            return []
        await cur.execute(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
        )
        return [AppliedMigration(*row) for row in await cur.fetchall()]


def _check_applied(wanted: Sequence[Migration], done: dict[int, AppliedMigration]) -> None:
    known = {m.version: m for m in wanted}
    for version, applied in sorted(done.items()):
        migration = known.get(version)
        if migration is None:
            raise UnknownAppliedMigration(version, applied.name)
        if migration.checksum != applied.checksum:
            raise MigrationChecksumMismatch(
                version, migration.name, applied.checksum, migration.checksum
            )


async def _apply(conn: psycopg.AsyncConnection[Any], migration: Migration) -> AppliedMigration:
    cur = conn.cursor(row_factory=tuple_row)
    try:
        async with conn.transaction():
            await cur.execute(migration.sql)
            await cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s) "
                "RETURNING applied_at",
                (migration.version, migration.name, migration.checksum),
            )
            row = await cur.fetchone()
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise  # the connection, not the migration: translated as unavailable
    except psycopg.Error as exc:
        reason = (exc.diag.message_primary or str(exc)).strip()
        raise MigrationFailed(migration.version, migration.name, reason) from exc
    assert row is not None
    return AppliedMigration(migration.version, migration.name, migration.checksum, row[0])
