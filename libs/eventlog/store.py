"""`EventLog`: appends batches to the hash-chained ``events`` table and reads them back.

Writers are serialised by a table lock taken in the appending transaction, so each
batch is chained onto the head it read, whoever else is appending. Rows go in with one
binary COPY per batch (psycopg 3.3 with libpq 18 can hang in pipeline mode on a single
statement carrying over ~1 MB of parameters; COPY streams instead).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow, tuple_row

from libs.eventlog.canonical import (
    GENESIS_HASH,
    canonical_encoding,
    canonical_tail,
    canonical_timestamp,
    chain_hash,
    encode_stored_json,
)
from libs.eventlog.errors import (
    InvalidBatch,
    InvalidRecord,
    PositionConflict,
    PositionGap,
    translated_errors,
)
from libs.eventlog.pgtypes import JsonbOrjsonLoader, use_jsonb_bytes_dumper, use_jsonb_loader
from libs.eventlog.records import (
    Appended,
    AppendResult,
    EventRecord,
    Head,
    StoredEvent,
    duplicate_marker,
)

_STORED_COLUMNS = (
    "position, event_id, type, account_id, occurred_at, recorded_at, payload, metadata, "
    "prev_hash, hash"
)
_COPY = (
    "COPY events (position, event_id, type, account_id, occurred_at, payload, metadata, "
    "prev_hash, hash) FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ("int8", "uuid", "text", "text", "timestamptz", "jsonb", "jsonb", "bytea", "bytea")
_HEAD = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"

#: A row as COPY takes it: position, event_id, type, account_id, occurred_at,
#: payload JSON, metadata JSON, prev_hash, hash.
_Row = tuple[int, UUID, str, str | None, datetime, bytes, bytes, bytes, bytes]


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A record with its JSON encoded and its canonical bytes short of the position."""

    record: EventRecord
    payload_json: bytes
    metadata_json: bytes
    tail: bytes

    def row(self, position: int, prev_hash: bytes) -> _Row:
        digest = chain_hash(prev_hash, canonical_encoding(position, self.tail))
        r = self.record
        return (
            position,
            r.event_id,
            r.type,
            r.account_id,
            r.occurred_at,
            self.payload_json,
            self.metadata_json,
            prev_hash,
            digest,
        )


def _encode_record(record: EventRecord) -> _Encoded:
    """Check ``record`` and encode everything of it that does not depend on its position."""
    try:
        _check_columns(record)
        payload_json = encode_stored_json(record.payload)
        metadata_json = encode_stored_json(record.metadata)
        tail = canonical_tail(
            str(record.event_id),
            record.type,
            record.account_id,
            canonical_timestamp(record.occurred_at),
            payload_json,
            metadata_json,
        )
    except InvalidRecord as exc:
        raise InvalidRecord(f"event {record.event_id}: {exc}") from None
    return _Encoded(record, payload_json, metadata_json, tail)


def check_record(record: EventRecord) -> None:
    """Raise `InvalidRecord` when `EventLog.append` would refuse ``record``."""
    _encode_record(record)


def _check_columns(record: EventRecord) -> None:
    # Refused here with a message naming the event, rather than by COPY half-way.
    if not isinstance(record.event_id, UUID):
        raise InvalidRecord(f"event_id must be a UUID, got {type(record.event_id).__name__}")
    if not isinstance(record.type, str) or not record.type or "\x00" in record.type:
        raise InvalidRecord(f"type must be a non-empty string without NUL, got {record.type!r}")
    if record.account_id is not None and (
        not isinstance(record.account_id, str) or "\x00" in record.account_id
    ):
        raise InvalidRecord("account_id must be a string without NUL, or None")
    if not isinstance(record.occurred_at, datetime):
        raise InvalidRecord("occurred_at must be a timezone-aware datetime")
    if not isinstance(record.payload, dict) or not isinstance(record.metadata, dict):
        raise InvalidRecord("payload and metadata must be JSON objects (dicts)")
    if record.position is not None and (
        not isinstance(record.position, int) or record.position < 1
    ):
        raise InvalidRecord(f"position must be a positive integer, got {record.position!r}")


class EventLog:
    """The event log on one psycopg ``AsyncConnection``, which the caller owns.

    The connection must be in autocommit mode: then `append` commits before it returns
    (a recorder may ack what it appended), unless the caller wraps it in its own
    ``conn.transaction()`` block, whose commit then stores the rows (and releases the
    writers' lock). Without autocommit any read would open an implicit transaction
    and an append would silently stay uncommitted inside it.
    """

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        _require_autocommit(conn)
        self._conn = conn

    async def append(self, records: Sequence[EventRecord]) -> AppendResult:
        """Store ``records`` in order, chained onto the current head, each event once.

        Positions are assigned (head + 1, ...) when no record carries one. When every
        record carries one, positions at or below the head must hold the same event (a
        redelivery: a no-op) and the rest must continue the head without a gap; an
        event already stored at another position leaves a `duplicate_marker` in its
        place, so positions stay gapless. Raises `InvalidRecord`, `InvalidBatch`,
        `PositionGap`, `PositionConflict` (nothing of the batch is stored then) or
        `EventLogUnavailable`.
        """
        _require_autocommit(self._conn)
        if not records:
            return AppendResult((), (), await self.head())
        supplied = _supplied_positions(records)
        # Encode before taking the lock: other writers wait only for the database work.
        encoded = [_encode_record(record) for record in records]
        with translated_errors():
            async with self._conn.transaction():
                cur = self._conn.cursor(row_factory=tuple_row)
                await cur.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
                head = await _head(cur)
                stored_ids = await _stored_positions_by_id(cur, encoded)
                if supplied:
                    held = await _held_positions(cur, encoded, head)
                    rows, duplicates = _plan_supplied(encoded, head, stored_ids, held)
                else:
                    rows, duplicates = _plan_assigned(encoded, head, stored_ids)
                if rows:
                    await _copy(cur, rows)
        new_head = Head(rows[-1][0], rows[-1][8]) if rows else head
        appended = tuple(Appended(row[0], row[1]) for row in rows)
        return AppendResult(appended, tuple(duplicates), new_head)

    async def head(self) -> Head:
        """The last row's position and hash (position 0 and the genesis hash when empty)."""
        with translated_errors():
            return await _head(self._conn.cursor(row_factory=tuple_row))

    async def read(self, from_position: int = 1, limit: int = 1000) -> list[StoredEvent]:
        """Up to ``limit`` rows from ``from_position`` on, in position order."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with translated_errors():
            cur = self._conn.cursor(binary=True, row_factory=tuple_row)
            use_jsonb_loader(cur, JsonbOrjsonLoader)
            await cur.execute(
                f"SELECT {_STORED_COLUMNS} FROM events WHERE position >= %s "
                "ORDER BY position LIMIT %s",
                (from_position, limit),
            )
            return [StoredEvent(*row) for row in await cur.fetchall()]

    async def stream(
        self, from_position: int = 1, *, batch_size: int = 2000
    ) -> AsyncIterator[StoredEvent]:
        """Every row from ``from_position`` on, fetched ``batch_size`` at a time.

        Pages by position rather than through a server-side cursor, so no transaction
        stays open while the consumer works; rows appended meanwhile are included.
        """
        position = from_position
        while True:
            batch = await self.read(position, batch_size)
            for event in batch:
                yield event
            if len(batch) < batch_size:
                return
            position = batch[-1].position + 1


def _require_autocommit(conn: AsyncConnection[Any]) -> None:
    if not conn.autocommit:
        raise ValueError(
            "EventLog needs an autocommit connection (psycopg.AsyncConnection.connect(..., "
            "autocommit=True)); use `async with conn.transaction()` to group work"
        )


def _supplied_positions(records: Sequence[EventRecord]) -> bool:
    with_position = sum(1 for record in records if record.position is not None)
    if with_position not in (0, len(records)):
        raise InvalidBatch(
            f"{with_position} of {len(records)} records carry a position: either all "
            "records carry one or none does"
        )
    return with_position > 0


async def _head(cur: AsyncCursor[TupleRow]) -> Head:
    await cur.execute(_HEAD)
    row = await cur.fetchone()
    return Head(0, GENESIS_HASH) if row is None else Head(row[0], row[1])


async def _stored_positions_by_id(
    cur: AsyncCursor[TupleRow], encoded: Sequence[_Encoded]
) -> dict[UUID, int]:
    await cur.execute(
        # Binary parameter: dumping a thousand UUIDs as text costs more than the lookup.
        "SELECT event_id, position FROM events WHERE event_id = ANY(%b)",
        ([item.record.event_id for item in encoded],),
    )
    return {event_id: position for event_id, position in await cur.fetchall()}


async def _held_positions(
    cur: AsyncCursor[TupleRow], encoded: Sequence[_Encoded], head: Head
) -> dict[int, tuple[UUID, str | None]]:
    """Stored (event_id, duplicate_of) of the batch's positions at or below the head."""
    positions = [item.record.position for item in encoded]
    lowest = min(p for p in positions if p is not None)
    if lowest > head.position:
        return {}
    await cur.execute(
        "SELECT position, event_id, metadata ->> 'duplicate_of' FROM events "
        "WHERE position BETWEEN %s AND %s",
        (lowest, head.position),
    )
    return {position: (event_id, dup) for position, event_id, dup in await cur.fetchall()}


def _plan_assigned(
    encoded: Sequence[_Encoded], head: Head, stored_ids: dict[UUID, int]
) -> tuple[list[_Row], list[UUID]]:
    rows: list[_Row] = []
    duplicates: list[UUID] = []
    seen = set(stored_ids)
    position, prev_hash = head.position, head.hash
    for item in encoded:
        event_id = item.record.event_id
        if event_id in seen:
            duplicates.append(event_id)
            continue
        seen.add(event_id)
        position += 1
        row = item.row(position, prev_hash)
        rows.append(row)
        prev_hash = row[8]
    return rows, duplicates


def _plan_supplied(
    encoded: Sequence[_Encoded],
    head: Head,
    stored_ids: dict[UUID, int],
    held: dict[int, tuple[UUID, str | None]],
) -> tuple[list[_Row], list[UUID]]:
    rows: list[_Row] = []
    duplicates: list[UUID] = []
    seen = set(stored_ids)
    expected, prev_hash = head.position + 1, head.hash
    previous: int | None = None
    for item in encoded:
        event_id = item.record.event_id
        position = item.record.position
        assert position is not None  # _supplied_positions checked every record
        if previous is not None and position <= previous:
            raise InvalidBatch(
                f"positions must increase within a batch: {position} follows {previous}"
            )
        previous = position
        if position <= head.position:
            stored = held.get(position)
            if stored is not None and event_id in (stored[0], _uuid_or_none(stored[1])):
                duplicates.append(event_id)  # redelivered: already recorded here
                continue
            raise PositionConflict(position, None if stored is None else stored[0], event_id)
        if position != expected:
            raise PositionGap(expected, position)
        if event_id in seen:
            # Re-published after the bus's duplicate window: the event is stored once,
            # but its stream position still needs a row.
            duplicates.append(event_id)
            item = _encode_record(duplicate_marker(item.record, position))
        seen.add(item.record.event_id)
        row = item.row(position, prev_hash)
        rows.append(row)
        prev_hash = row[8]
        expected += 1
    return rows, duplicates


def _uuid_or_none(text: str | None) -> UUID | None:
    if text is None:
        return None
    try:
        return UUID(text)
    except ValueError:
        return None


async def _copy(cur: AsyncCursor[TupleRow], rows: Sequence[_Row]) -> None:
    use_jsonb_bytes_dumper(cur)
    async with cur.copy(_COPY) as copy:
        copy.set_types(list(_COPY_TYPES))
        for row in rows:
            await copy.write_row(row)
