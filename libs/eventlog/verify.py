"""Verification of the log: gapless positions from 1 and an unbroken hash chain.

Reads every row once through a server-side cursor (memory stays flat however long the
log) and stops at the first bad row, since every later hash depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.rows import TupleRow, tuple_row

from libs.eventlog.canonical import (
    GENESIS_HASH,
    canonical_encoding,
    canonical_tail,
    canonical_utc_timestamp,
    chain_hash,
)
from libs.eventlog.errors import translated_errors
from libs.eventlog.pgtypes import JSONB_VERSION, use_jsonb_loader
from libs.eventlog.records import Head

# event_id as text and occurred_at as UTC wall time: the forms the canonical encoding
# needs, produced by the server instead of per row in Python.
_SELECT = (
    "SELECT position, event_id::text, type, account_id, occurred_at AT TIME ZONE 'UTC', "
    "payload, metadata, prev_hash, hash FROM events ORDER BY position"
)


class ProblemKind(StrEnum):
    """What is wrong with a row."""

    #: A position is missing (a row was deleted, or the log does not start at 1).
    GAP = "gap"
    #: The row's prev_hash is not the previous row's hash (or the genesis hash).
    PREV_HASH_MISMATCH = "prev_hash_mismatch"
    #: The row's content does not hash to its stored hash (the row was altered).
    HASH_MISMATCH = "hash_mismatch"
    #: The row's stored JSON cannot be read back into data that can be hashed.
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first bad position and what is wrong there."""

    position: int
    kind: ProblemKind
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify_chain`.

    ``rows_checked`` counts the rows found good; ``last_good`` is the last of them (the
    log's head when ``ok``; position 0 and the genesis hash when none was).
    """

    rows_checked: int
    last_good: Head
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        """True when every row checked out."""
        return self.problem is None

    def summary(self) -> str:
        """One line for people: the head and its hash, or the first bad position."""
        if self.problem is None:
            return (
                f"event log OK: {self.rows_checked} rows checked, head position "
                f"{self.last_good.position}, head hash {self.last_good.hash.hex()}"
            )
        return (
            f"event log BROKEN at position {self.problem.position} "
            f"({self.problem.kind.value}): {self.problem.detail}; "
            f"the {self.rows_checked} rows before it are good"
        )

    def to_json(self) -> dict[str, Any]:
        """The same facts as a JSON-ready object (``head_*``: the last good row)."""
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "head_position": self.last_good.position,
            "head_hash": self.last_good.hash.hex(),
            "problem": None
            if self.problem is None
            else {
                "position": self.problem.position,
                "kind": self.problem.kind.value,
                "detail": self.problem.detail,
            },
        }


async def verify_chain(conn: AsyncConnection[Any], *, batch_size: int = 1000) -> VerifyReport:
    """Check the whole log from position 1; report the first problem, if any.

    ``batch_size`` rows are fetched at a time (about a thousand measured fastest:
    larger fetches cost more in memory churn than they save in round trips). Runs in
    a transaction of its own (or a savepoint of the caller's) for the
    server-side cursor. Raises `EventLogError` subclasses only when the log cannot be
    read at all (e.g. `SchemaMissing`, `EventLogUnavailable`).
    """
    expected, prev = 1, GENESIS_HASH
    with translated_errors():
        async with (
            conn.transaction(),
            conn.cursor("senex_eventlog_verify", binary=True, row_factory=tuple_row) as cur,
        ):
            use_jsonb_loader(cur, _CanonicalJsonLoader)
            await cur.execute(_SELECT)
            while rows := await cur.fetchmany(batch_size):
                for row in rows:
                    problem = _check_row(row, expected, prev)
                    if problem is not None:
                        return VerifyReport(expected - 1, Head(expected - 1, prev), problem)
                    prev = row[8]
                    expected += 1
    return VerifyReport(expected - 1, Head(expected - 1, prev), None)


class _Unreadable(str):
    """Stands for stored JSON that could not be decoded and re-encoded; says why."""


class _CanonicalJsonLoader(Loader):
    """Loads binary jsonb straight into its canonical encoding (sorted, compact)."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes | _Unreadable:
        view = memoryview(data)
        if not view or view[0] != JSONB_VERSION:
            return _Unreadable(f"unknown jsonb binary format {bytes(view[:1])!r}")
        try:
            # The decode/encode pair append's encoding assumes (see canonical.py).
            return orjson.dumps(orjson.loads(view[1:]), option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError) as exc:
            return _Unreadable(str(exc))


def _check_row(row: TupleRow, expected: int, prev: bytes) -> ChainProblem | None:
    position, event_id, type_, account_id, occurred_at, payload, metadata, prev_hash, hash_ = row
    if position != expected:
        return _gap(expected, position)
    if prev_hash != prev:
        return ChainProblem(
            position,
            ProblemKind.PREV_HASH_MISMATCH,
            f"prev_hash {prev_hash.hex()} is not the hash of {_previous(position)} ({prev.hex()})",
        )
    for column, value in (("payload", payload), ("metadata", metadata)):
        if isinstance(value, _Unreadable):
            return ChainProblem(position, ProblemKind.UNREADABLE, f"stored {column}: {value}")
    tail = canonical_tail(
        event_id, type_, account_id, canonical_utc_timestamp(occurred_at), payload, metadata
    )
    computed = chain_hash(prev, canonical_encoding(position, tail))
    if computed != hash_:
        return ChainProblem(
            position,
            ProblemKind.HASH_MISMATCH,
            f"content hashes to {computed.hex()} but the stored hash is {hash_.hex()}: "
            "the row was altered",
        )
    return None


def _gap(expected: int, found: int) -> ChainProblem:
    missing = (
        f"position {expected} is missing"
        if found == expected + 1
        else f"positions {expected}..{found - 1} are missing"
    )
    return ChainProblem(expected, ProblemKind.GAP, f"{missing}; the next row is at {found}")


def _previous(position: int) -> str:
    return "the genesis (32 zero bytes)" if position == 1 else f"position {position - 1}"
