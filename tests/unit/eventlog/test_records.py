"""Turning events and unparseable bus messages into log records."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID, uuid4

from libs.contracts.envelope import Event
from libs.eventlog.records import (
    DUPLICATE_TYPE,
    MALFORMED_TYPE,
    duplicate_marker,
    malformed_record,
    record_from_event,
)

NOON = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


class Ping(Event):
    type: Literal["Ping"] = "Ping"
    n: int
    note: str = ""


def ping(**changes: object) -> Ping:
    fields: dict[str, object] = {
        "occurred_at": NOON,
        "producer": "test",
        "correlation_id": uuid4(),
        "account_id": "5WT00001",
        "n": 1,
    }
    fields.update(changes)
    return Ping.model_validate(fields)


def test_envelope_goes_to_columns_and_metadata_and_own_fields_to_payload() -> None:
    cause = uuid4()
    event = ping(n=7, note="é", causation_id=cause)
    record = record_from_event(event)
    assert (record.event_id, record.type, record.account_id, record.occurred_at) == (
        event.event_id,
        "Ping",
        "5WT00001",
        NOON,
    )
    assert record.payload == {"n": 7, "note": "é"}
    assert record.metadata == {
        "schema_version": 1,
        "producer": "test",
        "correlation_id": str(event.correlation_id),
        "causation_id": str(cause),
        "malformed": False,
    }
    assert record.position is None
    assert not record.malformed


def test_market_wide_events_have_no_account_and_a_root_event_no_cause() -> None:
    record = record_from_event(ping(account_id=None))
    assert record.account_id is None
    assert record.metadata["causation_id"] is None


def test_a_recorder_can_give_the_stream_sequence_as_position() -> None:
    assert record_from_event(ping(), position=42).position == 42


def test_unparseable_text_is_kept_verbatim_and_flagged() -> None:
    record = malformed_record(
        b'{"type": "OrderFilled", "oops"',
        reason="invalid JSON",
        occurred_at=NOON,
        position=9,
        subject="senex.evt.5WT00001.execution.OrderFilled",
    )
    assert record.malformed
    assert record.type == MALFORMED_TYPE
    assert record.payload == {}
    assert record.metadata == {
        "malformed": True,
        "reason": "invalid JSON",
        "raw": '{"type": "OrderFilled", "oops"',
        "raw_encoding": "utf-8",
        "subject": "senex.evt.5WT00001.execution.OrderFilled",
    }


def test_bytes_that_are_not_utf8_or_hold_nul_are_kept_base64_encoded() -> None:
    for raw in (b"\xff\xfe binary", b"text with \x00 inside"):
        record = malformed_record(raw, reason="undecodable", occurred_at=NOON)
        assert record.metadata["raw_encoding"] == "base64"
        assert base64.b64decode(str(record.metadata["raw"])) == raw


def test_a_redelivered_malformed_message_maps_to_the_same_event_id() -> None:
    first = malformed_record(b"?", reason="x", occurred_at=NOON, position=12)
    again = malformed_record(b"?", reason="x", occurred_at=NOON, position=12)
    other = malformed_record(b"?", reason="x", occurred_at=NOON, position=13)
    assert first.event_id == again.event_id != other.event_id


def test_the_message_id_header_wins_over_a_derived_id() -> None:
    header_id = UUID("0190f3c5-8d7e-7a4b-9c3d-2e1f0a9b8c7d")
    record = malformed_record(b"?", reason="x", occurred_at=NOON, position=3, event_id=header_id)
    assert record.event_id == header_id


def test_a_duplicate_marker_names_the_event_it_stands_for() -> None:
    original = record_from_event(ping(), position=5)
    marker = duplicate_marker(original, 8)
    assert marker.type == DUPLICATE_TYPE
    assert marker.position == 8
    assert marker.event_id not in (original.event_id, duplicate_marker(original, 9).event_id)
    assert marker.event_id == duplicate_marker(original, 8).event_id
    assert marker.metadata == {"malformed": False, "duplicate_of": str(original.event_id)}
