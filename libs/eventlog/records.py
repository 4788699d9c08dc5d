"""What goes into the log (`EventRecord`) and what comes out (`StoredEvent`).

An event is split into columns (``event_id``, ``type``, ``account_id``, ``occurred_at``),
``payload`` (its own fields) and ``metadata`` (the rest of the envelope). A bus message
that could not be parsed is still recorded, as a `malformed_record`, so the log's
positions stay those of the stream without gaps.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple
from uuid import UUID, uuid5

from libs.contracts.envelope import Event, new_event_id

#: ``type`` of a row holding a bus message that could not be parsed.
MALFORMED_TYPE = "MalformedMessage"
#: ``type`` of a row holding the place of a re-published event already in the log.
DUPLICATE_TYPE = "DuplicateMessage"

#: Namespace of the event ids the log derives for rows that have no event id of their own.
_DERIVED_ID_NAMESPACE = UUID("6a1d0c3e-52b4-4f0e-9a8e-3f6c2b1d7e55")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event as the log stores it, before it has a hash.

    ``position`` is None when the log assigns it (head + 1, ...); a recorder copying a
    stream sets it to the stream sequence.
    """

    event_id: UUID
    type: str
    account_id: str | None
    occurred_at: datetime
    payload: dict[str, object]
    metadata: dict[str, object]
    position: int | None = None

    @property
    def malformed(self) -> bool:
        """True for a bus message stored as-is because it could not be parsed."""
        return self.metadata.get("malformed") is True


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A row of the log."""

    position: int
    event_id: UUID
    type: str
    account_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    payload: dict[str, object]
    metadata: dict[str, object]
    prev_hash: bytes = field(repr=False)
    hash: bytes = field(repr=False)

    @property
    def malformed(self) -> bool:
        """True for a bus message stored as-is because it could not be parsed."""
        return self.metadata.get("malformed") is True

    @property
    def correlation_id(self) -> str | None:
        """The correlation id from the metadata (None for a malformed message)."""
        value = self.metadata.get("correlation_id")
        return value if isinstance(value, str) else None


class Head(NamedTuple):
    """The last row of the log: its position and hash.

    An empty log's head is position 0 with the genesis hash, the ``prev_hash`` of
    position 1.
    """

    position: int
    hash: bytes


class Appended(NamedTuple):
    """A row written by one `append` call."""

    position: int
    event_id: UUID


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one `append` call did.

    ``appended`` lists the rows written, in position order. ``duplicates`` lists, in
    batch order, the event ids that were not stored again: already in the log, or
    repeated within the batch. ``head`` is the log's head after the call.
    """

    appended: tuple[Appended, ...]
    duplicates: tuple[UUID, ...]
    head: Head


def record_from_event(event: Event, *, position: int | None = None) -> EventRecord:
    """The record of a contract event: envelope into columns and metadata, fields into payload."""
    return EventRecord(
        event_id=event.event_id,
        type=event.type,
        account_id=event.account_id,
        occurred_at=event.occurred_at,
        payload=event.payload(),
        metadata={
            "schema_version": event.schema_version,
            "producer": event.producer,
            "correlation_id": str(event.correlation_id),
            "causation_id": None if event.causation_id is None else str(event.causation_id),
            "malformed": False,
        },
        position=position,
    )


def malformed_record(
    raw: bytes | str,
    *,
    reason: str,
    occurred_at: datetime,
    position: int | None = None,
    event_id: UUID | None = None,
    account_id: str | None = None,
    subject: str | None = None,
) -> EventRecord:
    """The record of a bus message that could not be parsed, kept as-is and flagged.

    ``occurred_at`` is when the bus stored the message (the log has no better time for
    it). Without an ``event_id`` (the message's id header, when it holds a UUID) the id
    is derived from ``position`` so that a redelivery maps to the same row, or is fresh
    when the log assigns positions. Raw bytes that are not UTF-8 text, or that contain
    NUL (which ``jsonb`` cannot hold), are kept base64-encoded.
    """
    if event_id is None:
        event_id = (
            new_event_id()
            if position is None
            else uuid5(_DERIVED_ID_NAMESPACE, f"malformed:{position}")
        )
    text, encoding = _raw_text(raw)
    return EventRecord(
        event_id=event_id,
        type=MALFORMED_TYPE,
        account_id=account_id,
        occurred_at=occurred_at,
        payload={},
        metadata={
            "malformed": True,
            "reason": reason,
            "raw": text,
            "raw_encoding": encoding,
            "subject": subject,
        },
        position=position,
    )


def duplicate_marker(record: EventRecord, position: int) -> EventRecord:
    """The row standing at ``position`` for a re-published copy of ``record``'s event.

    The event is stored once (at its first position); the copy's stream position still
    needs a row so positions stay gapless. The marker's id is derived from the position
    (so a redelivery maps to it) and ``metadata.duplicate_of`` names the event.
    """
    return EventRecord(
        event_id=uuid5(_DERIVED_ID_NAMESPACE, f"duplicate:{position}"),
        type=DUPLICATE_TYPE,
        account_id=record.account_id,
        occurred_at=record.occurred_at,
        payload={},
        metadata={"malformed": False, "duplicate_of": str(record.event_id)},
        position=position,
    )


def _raw_text(raw: bytes | str) -> tuple[str, str]:
    data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if "\x00" not in text:
            return text, "utf-8"
    return base64.b64encode(data).decode("ascii"), "base64"
