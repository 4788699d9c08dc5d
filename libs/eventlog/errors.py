"""The event log's errors, and the one place psycopg errors become them.

``EventLogError`` is the base; callers catch a subclass when they can act on it (a
recorder treats `PositionConflict` differently from `EventLogUnavailable`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import psycopg
from psycopg import errors as pg_errors

#: SQLSTATE the append-only triggers raise (class "SX": Senex, user-defined).
APPEND_ONLY_SQLSTATE = "SXA01"


class EventLogError(Exception):
    """Base of every event log error."""


class EventLogUnavailable(EventLogError):
    """The database could not be reached or the connection broke; retrying may help."""


class SchemaMissing(EventLogError):
    """The events table does not exist: run ``senex db migrate`` first."""


class MigrationError(EventLogError):
    """The schema cannot be brought up to date."""


class InvalidMigrationFile(MigrationError):
    """A migration file is misnamed or two files claim the same version."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration's file changed after it was applied."""

    def __init__(self, version: int, name: str, applied: str, current: str) -> None:
        super().__init__(
            f"migration {version:04d}_{name} was applied with checksum {applied} but the "
            f"file now has checksum {current}: applied migrations must not be edited; "
            "add a new migration instead"
        )
        self.version = version
        self.name = name
        self.applied = applied
        self.current = current


class MigrationFailed(MigrationError):
    """A migration's SQL failed; it was rolled back and is not recorded as applied."""

    def __init__(self, version: int, name: str, reason: str) -> None:
        super().__init__(f"migration {version:04d}_{name} failed and was rolled back: {reason}")
        self.version = version
        self.name = name
        self.reason = reason


class UnknownAppliedMigration(MigrationError):
    """The database carries a migration this code does not know (it is newer)."""

    def __init__(self, version: int, name: str) -> None:
        super().__init__(
            f"the database has migration {version:04d}_{name}, which this code does not "
            "have: the database is newer than the code"
        )
        self.version = version
        self.name = name


class AppendError(EventLogError):
    """A batch could not be appended; nothing of it was stored."""


class InvalidRecord(AppendError):
    """A record cannot be stored as given (the message says which value and why)."""


class InvalidBatch(AppendError):
    """The batch as a whole is inconsistent (e.g. some records carry positions, some not)."""


class PositionGap(AppendError):
    """Supplied positions do not continue the head of the log without a gap."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(
            f"supplied position {got} does not continue the log: the next position is {expected}"
        )
        self.expected = expected
        self.got = got


class PositionConflict(AppendError):
    """A supplied position at or below the head does not hold the offered event."""

    def __init__(self, position: int, stored: UUID | None, offered: UUID) -> None:
        held = (
            "no row (the log has a gap: run `senex audit verify`)"
            if stored is None
            else f"event {stored}"
        )
        super().__init__(
            f"position {position} already holds {held}, not event {offered}: the source "
            "of positions disagrees with the log"
        )
        self.position = position
        self.stored = stored
        self.offered = offered


class AppendOnlyViolation(EventLogError):
    """Something tried to UPDATE, DELETE or TRUNCATE the events table."""


def translate(exc: psycopg.Error) -> EventLogError:
    """The event log error that ``exc`` means (`EventLogError` when nothing more precise)."""
    message = (exc.diag.message_primary or str(exc)).strip()
    if exc.sqlstate == APPEND_ONLY_SQLSTATE:
        return AppendOnlyViolation(message)
    if isinstance(exc, pg_errors.UndefinedTable):
        return SchemaMissing(f"{message}: run `senex db migrate` first")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return EventLogUnavailable(f"database unavailable: {message}")
    if isinstance(exc, pg_errors.UntranslatableCharacter | pg_errors.InvalidTextRepresentation):
        return InvalidRecord(message)
    return EventLogError(f"database error ({exc.sqlstate or 'no sqlstate'}): {message}")


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise psycopg errors raised inside the block as `EventLogError` subclasses."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc
