"""Reading one account's history back as contract events, for replay.

`read_account` streams an account's rows in position order, up to a business time and
a position, paging by ``position > last`` (no transaction stays open while the caller
folds). `event_from_stored` rebuilds the contract event a row recorded: the columns and
metadata hold the envelope, the payload the event's own fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from libs.contracts.envelope import Event
from libs.contracts.registry import parse_event
from libs.eventlog.errors import translated_errors
from libs.eventlog.pgtypes import JsonbOrjsonLoader, use_jsonb_loader
from libs.eventlog.records import DUPLICATE_TYPE, MALFORMED_TYPE, StoredEvent

_STORED_COLUMNS = (
    "position, event_id, type, account_id, occurred_at, recorded_at, payload, metadata, "
    "prev_hash, hash"
)
#: Metadata keys that are envelope fields (see ``record_from_event``).
_ENVELOPE_METADATA = ("schema_version", "producer", "correlation_id", "causation_id")


async def read_account(
    conn: AsyncConnection[Any],
    account_id: str,
    *,
    until: datetime | None = None,
    through_position: int | None = None,
    after_position: int = 0,
    batch_size: int = 2000,
) -> AsyncIterator[StoredEvent]:
    """Rows of ``account_id`` in position order, ``batch_size`` at a time.

    Only rows with ``occurred_at <= until`` (timezone-aware) and, when given,
    ``position <= through_position`` (a replay pins the head it started from, so rows
    appended meanwhile do not make the result depend on timing). Raises `ValueError`
    for a naive ``until``, `EventLogError` subclasses for database failures.
    """
    if until is not None and until.utcoffset() is None:
        raise ValueError("until must be timezone-aware")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    where = ["account_id = %s", "position > %s"]
    bounds: list[Any] = []
    if until is not None:
        where.append("occurred_at <= %s")
        bounds.append(until)
    if through_position is not None:
        where.append("position <= %s")
        bounds.append(through_position)
    sql = (
        f"SELECT {_STORED_COLUMNS} FROM events WHERE {' AND '.join(where)} "
        "ORDER BY position LIMIT %s"
    )
    last = after_position
    while True:
        with translated_errors():
            cur = conn.cursor(binary=True, row_factory=tuple_row)
            use_jsonb_loader(cur, JsonbOrjsonLoader)
            await cur.execute(sql, (account_id, last, *bounds, batch_size))
            batch = [StoredEvent(*row) for row in await cur.fetchall()]
        for stored in batch:
            yield stored
        if len(batch) < batch_size:
            return
        last = batch[-1].position


def is_marker(stored: StoredEvent) -> bool:
    """True for rows that hold no event of their own: malformed messages, duplicates."""
    return stored.malformed or stored.type in (MALFORMED_TYPE, DUPLICATE_TYPE)


def event_from_stored(stored: StoredEvent) -> Event | None:
    """The contract event ``stored`` recorded; None for a malformed or duplicate-marker row.

    Old schema versions are upcast as on the bus. Raises ``ContractError`` when the
    row no longer parses against the contracts (an unknown type, a missing upcaster).
    """
    if is_marker(stored):
        return None
    metadata = stored.metadata
    data: dict[str, Any] = dict(stored.payload)
    data.update({key: metadata[key] for key in _ENVELOPE_METADATA if key in metadata})
    data["event_id"] = stored.event_id
    data["type"] = stored.type
    data["account_id"] = stored.account_id
    # timestamptz comes back in the session's time zone; the log's canonical form is UTC.
    data["occurred_at"] = stored.occurred_at.astimezone(UTC)
    return parse_event(data)
