"""The append-only, hash-chained event log in PostgreSQL.

``EventLog`` appends and reads, ``verify_chain`` checks the chain, ``migrate`` brings
the schema up to date; the modules hold the details (records, canonical encoding,
errors).
"""

from libs.eventlog.errors import (
    AppendError,
    AppendOnlyViolation,
    EventLogError,
    EventLogUnavailable,
    InvalidBatch,
    InvalidRecord,
    MigrationChecksumMismatch,
    MigrationError,
    MigrationFailed,
    PositionConflict,
    PositionGap,
    SchemaMissing,
    UnknownAppliedMigration,
)
from libs.eventlog.migrate import AppliedMigration, migrate, migrate_async, migrate_sync
from libs.eventlog.records import (
    AppendResult,
    EventRecord,
    Head,
    StoredEvent,
    malformed_record,
    record_from_event,
)
from libs.eventlog.store import EventLog
from libs.eventlog.verify import ChainProblem, ProblemKind, VerifyReport, verify_chain

__all__ = [
    "AppendError",
    "AppendOnlyViolation",
    "AppendResult",
    "AppliedMigration",
    "ChainProblem",
    "EventLog",
    "EventLogError",
    "EventLogUnavailable",
    "EventRecord",
    "Head",
    "InvalidBatch",
    "InvalidRecord",
    "MigrationChecksumMismatch",
    "MigrationError",
    "MigrationFailed",
    "PositionConflict",
    "PositionGap",
    "ProblemKind",
    "SchemaMissing",
    "StoredEvent",
    "UnknownAppliedMigration",
    "VerifyReport",
    "malformed_record",
    "migrate",
    "migrate_async",
    "migrate_sync",
    "record_from_event",
    "verify_chain",
]
