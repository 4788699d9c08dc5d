"""Rebuilding a contract event from a log row (columns + metadata + payload)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from libs.contracts.envelope import Event
from libs.contracts.errors import ContractError
from libs.eventlog.reads import event_from_stored
from libs.eventlog.records import (
    EventRecord,
    StoredEvent,
    duplicate_marker,
    malformed_record,
    record_from_event,
)
from tests.integration.replay.scenario import account_history

RECORDED_AT = datetime(2026, 1, 6, tzinfo=UTC)


def stored(record: EventRecord, position: int = 1) -> StoredEvent:
    """``record`` as the log hands it back; timestamptz comes in the session's zone."""
    return StoredEvent(
        position=position,
        event_id=record.event_id,
        type=record.type,
        account_id=record.account_id,
        occurred_at=record.occurred_at.astimezone(timezone(timedelta(hours=-5))),
        recorded_at=RECORDED_AT,
        payload=record.payload,
        metadata=record.metadata,
        prev_hash=bytes(32),
        hash=bytes(32),
    )


@pytest.mark.parametrize("event", account_history("5WT00001", close_all=True), ids=lambda e: e.type)
def test_every_event_comes_back_equal(event: Event) -> None:
    rebuilt = event_from_stored(stored(record_from_event(event)))
    assert rebuilt == event
    assert rebuilt is not None
    assert rebuilt.occurred_at.tzinfo is UTC


def test_a_malformed_row_holds_no_event() -> None:
    record = malformed_record(
        b"{not json", reason="not JSON", occurred_at=RECORDED_AT, position=7, account_id="A"
    )
    assert event_from_stored(stored(record, 7)) is None


def test_a_duplicate_marker_holds_no_event() -> None:
    (event, *_) = account_history("5WT00001", close_all=False)
    marker = duplicate_marker(record_from_event(event), 9)
    assert event_from_stored(stored(marker, 9)) is None


def test_a_row_that_no_longer_parses_raises() -> None:
    (event, *_) = account_history("5WT00001", close_all=False)
    record = record_from_event(event)
    gone = EventRecord(
        event_id=record.event_id,
        type="SuggestionRetired",
        account_id=record.account_id,
        occurred_at=record.occurred_at,
        payload=record.payload,
        metadata=record.metadata,
    )
    with pytest.raises(ContractError):
        event_from_stored(stored(gone))
