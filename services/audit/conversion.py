"""Pure: a bus message of the business stream -> the event-log record for its position.

Every message gets a record, whatever it holds: one that does not parse against the
contracts is kept as-is and flagged, so the log's positions stay the stream's, gapless.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import orjson

from libs.contracts.envelope import ENVELOPE_FIELDS
from libs.contracts.errors import ContractError
from libs.contracts.registry import parse_event
from libs.contracts.subjects import account_of_subject
from libs.eventlog.records import EventRecord, malformed_record


def _uuid(text: str | None) -> UUID | None:
    if not text:
        return None
    try:
        return UUID(text)
    except ValueError:
        return None


def record_for_message(
    data: bytes,
    *,
    sequence: int,
    stored_at: datetime,
    subject: str,
    msg_id: str | None,
) -> tuple[EventRecord, bool]:
    """The record for stream message ``sequence``, and whether it parsed.

    A message that parses is recorded as it was published (its own JSON, not a
    re-serialisation), so the log holds what producers said, at the schema version they
    said it in; replay upcasts it again. ``stored_at`` (when the stream stored it) stands
    in for ``occurred_at`` of a message that has none of its own. A malformed message
    keeps the id it was published with when that is a UUID; otherwise the log derives
    one from the position.
    """
    try:
        event = parse_event(data)
    except ContractError as exc:
        account = account_of_subject(subject)
        record = malformed_record(
            data,
            reason=str(exc),
            occurred_at=stored_at,
            position=sequence,
            event_id=_uuid(msg_id),
            account_id=account,
            subject=subject,
        )
        return record, False
    published = orjson.loads(data)
    record = EventRecord(
        event_id=event.event_id,
        type=event.type,
        account_id=event.account_id,
        occurred_at=event.occurred_at,
        payload={k: v for k, v in published.items() if k not in ENVELOPE_FIELDS},
        metadata={
            "schema_version": published.get("schema_version", 1),
            "producer": event.producer,
            "correlation_id": str(event.correlation_id),
            "causation_id": None if event.causation_id is None else str(event.causation_id),
            "malformed": False,
        },
        position=sequence,
    )
    return record, True
