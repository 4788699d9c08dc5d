"""Audit queries over the event log, answered over NATS for the gateway.

Every query is scoped to the command's account: a user sees only their own events.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow, tuple_row

from libs.contracts.commands import (
    Command,
    EventPageReply,
    GetCausalChain,
    GetEvents,
    RecordedEvent,
    VerifyEventLog,
    VerifyReply,
)
from libs.contracts.errors import ValidationFailed
from libs.eventlog.errors import translated_errors
from libs.eventlog.pgtypes import JsonbOrjsonLoader, use_jsonb_loader
from libs.eventlog.verify import verify_chain

_COLUMNS = "position, event_id, type, account_id, occurred_at, payload, metadata"
#: Metadata keys that are envelope fields of the flat event.
_ENVELOPE_META = ("schema_version", "producer", "correlation_id", "causation_id")
#: Most rows one causal-chain answer carries: a chain is one decision's history.
CHAIN_LIMIT = 1000


def recorded_event(row: TupleRow) -> RecordedEvent:
    """A log row as the flat event it recorded (or the raw text of a malformed one)."""
    position, event_id, type_name, account_id, occurred_at, payload, metadata = row
    if metadata.get("malformed"):
        return RecordedEvent(
            position=position,
            event_id=event_id,
            type=None,
            account_id=account_id,
            occurred_at=occurred_at,
            valid=False,
            data=None,
            raw=metadata.get("raw"),
        )
    data: dict[str, Any] = {
        "event_id": str(event_id),
        "type": type_name,
        "account_id": account_id,
        "occurred_at": occurred_at.isoformat(),
        **{key: metadata.get(key) for key in _ENVELOPE_META},
        **payload,
    }
    return RecordedEvent(
        position=position,
        event_id=event_id,
        type=type_name,
        account_id=account_id,
        occurred_at=occurred_at,
        valid=True,
        data=data,
    )


class AuditQueries:
    """Answers GetEvents, GetCausalChain and VerifyEventLog from one connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def _rows(self, sql: str, params: tuple[Any, ...]) -> list[TupleRow]:
        with translated_errors():
            cur = self._conn.cursor(binary=True, row_factory=tuple_row)
            use_jsonb_loader(cur, JsonbOrjsonLoader)
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def get_events(self, command: Command) -> EventPageReply:
        """One page of the account's events, filtered by type and time, by position."""
        if not isinstance(command, GetEvents):
            raise ValidationFailed("expected GetEvents", field="type")
        if command.since and command.until and command.since > command.until:
            raise ValidationFailed("since must not be after until", field="since")
        where = ["account_id = %s"]
        params: list[Any] = [command.account_id]
        if command.types:
            where.append("type = ANY(%s)")
            params.append(list(command.types))
        if command.since is not None:
            where.append("occurred_at >= %s")
            params.append(command.since)
        if command.until is not None:
            where.append("occurred_at <= %s")
            params.append(command.until)
        if command.after_position is not None:
            where.append("position > %s")
            params.append(command.after_position)
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY position LIMIT %s"
        )
        rows = await self._rows(sql, (*params, command.limit + 1))
        more = len(rows) > command.limit
        events = tuple(recorded_event(row) for row in rows[: command.limit])
        return EventPageReply(
            events=events, next_after_position=events[-1].position if more else None
        )

    async def get_causal_chain(self, command: Command) -> EventPageReply:
        """Every event of the account sharing the correlation id, in position order."""
        if not isinstance(command, GetCausalChain):
            raise ValidationFailed("expected GetCausalChain", field="type")
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE metadata ->> 'correlation_id' = %s "
            "AND account_id = %s ORDER BY position LIMIT %s"
        )
        rows = await self._rows(
            sql, (str(command.chain_correlation_id), command.account_id, CHAIN_LIMIT + 1)
        )
        events = tuple(recorded_event(row) for row in rows[:CHAIN_LIMIT])
        more = len(rows) > CHAIN_LIMIT
        return EventPageReply(
            events=events, next_after_position=events[-1].position if more else None
        )

    async def verify(self, command: Command) -> VerifyReply:
        """Check the whole log's hash chain and gapless positions."""
        if not isinstance(command, VerifyEventLog):
            raise ValidationFailed("expected VerifyEventLog", field="type")
        report = await verify_chain(self._conn)
        problem = report.problem
        return VerifyReply(
            ok=report.ok,
            checked=report.rows_checked,
            first_bad_position=problem.position if problem else None,
            message=report.summary(),
        )
