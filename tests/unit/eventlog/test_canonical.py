"""The canonical encoding: what append hashes is exactly what verify rebuilds.

PostgreSQL's ``jsonb`` does not keep the JSON text it was given: it reorders keys,
reprints numbers in plain notation, drops the sign of zero. ``simulated_jsonb`` below
models that (the integration tests check the same values against a real server).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.eventlog.canonical import (
    GENESIS_HASH,
    canonical_encoding,
    canonical_tail,
    canonical_timestamp,
    canonical_utc_timestamp,
    chain_hash,
    encode_json,
    encode_stored_json,
    normalise_json,
    row_hash,
)
from libs.eventlog.errors import InvalidRecord
from tests.unit.eventlog.strategies import payloads


class _Numeric:
    """A JSON number as PostgreSQL's numeric prints it."""

    def __init__(self, literal: str) -> None:
        value = Decimal(literal)
        text = format(value, "f")
        self.text = text.lstrip("-") if value == 0 else text  # numeric has no -0


def _jsonb_text(value: object) -> str:
    """jsonb's output: keys by (length, bytes), ", " and ": " separators."""
    if isinstance(value, _Numeric):
        return value.text
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=False)}: {_jsonb_text(value[k])}" for k in keys
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_jsonb_text(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def simulated_jsonb(stored: bytes) -> object:
    """What reading a jsonb column holding ``stored`` gives (orjson-decoded)."""
    parsed = json.loads(stored, parse_float=_Numeric, parse_int=_Numeric)
    return orjson.loads(_jsonb_text(parsed).encode())


def test_the_simulation_shows_why_plain_encoding_is_not_enough() -> None:
    naive = orjson.dumps({"huge": 1e16, "zero": -0.0}, option=orjson.OPT_SORT_KEYS)
    assert encode_json(simulated_jsonb(naive)) == b'{"huge":10000000000000000,"zero":0.0}'
    assert naive == b'{"huge":1e+16,"zero":-0.0}'


@given(payloads)
def test_stored_encoding_survives_a_jsonb_round_trip(payload: dict[str, object]) -> None:
    stored = encode_stored_json(payload)
    assert encode_json(simulated_jsonb(stored)) == stored


@given(payloads)
def test_key_order_of_the_input_does_not_change_the_encoding(payload: dict[str, object]) -> None:
    reversed_payload = dict(reversed(list(payload.items())))
    assert encode_stored_json(reversed_payload) == encode_stored_json(payload)


@given(payloads)
def test_fast_path_and_full_normalisation_agree(payload: dict[str, object]) -> None:
    assert encode_stored_json(payload) == encode_json(normalise_json(payload))


def test_nested_unicode_big_integers_decimals_floats_and_nulls_survive() -> None:
    payload = {
        "legs": [{"strike": "480.00", "price": "1.25", "qty": -1}, {"strike": "475", "qty": 1}],
        "note": 'Schlusskurs é ü 漢字 😀 \u2028 tab\there "quoted" back\\slash',
        "big": 2**63 - 1,
        "bigger": 2**64 - 1,
        "smallest": -(2**63),
        "credit": "0.4500",
        "ratio": 0.1,
        "tiny": 1e-7,
        "huge": 1e16,
        "beyond_64_bits": 1.5e300,
        "zero": -0.0,
        "integral_float": 100.0,
        "nothing": None,
        "flags": [True, False, None],
        "empty": {"list": [], "object": {}},
    }
    stored = encode_stored_json(payload)
    assert encode_json(simulated_jsonb(stored)) == stored


def test_floats_jsonb_prints_as_integers_are_stored_as_those_integers() -> None:
    assert normalise_json({"a": 1e16, "b": -2.5e18, "c": 1.5e300}) == {
        "a": 10**16,
        "b": -(25 * 10**17),
        "c": 1.5e300,
    }


def test_negative_zero_is_stored_as_zero() -> None:
    assert encode_stored_json({"z": -0.0}) == b'{"z":0.0}'


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"n": 2**64}, "$.n"),
        ({"n": [1, -(2**63) - 1]}, "$.n[1]"),
        ({"x": {"nan": float("nan")}}, "$.x.nan"),
        ({"inf": float("inf")}, "$.inf"),
        ({"text": "a\x00b"}, "$.text"),
        ({"price": Decimal("1.25")}, "$.price"),
        ({"when": datetime(2026, 1, 2, tzinfo=UTC)}, "$.when"),
        ({1: "non-string key"}, "$"),
    ],
)
def test_values_jsonb_cannot_keep_are_refused_naming_where(
    payload: dict[object, object], where: str
) -> None:
    with pytest.raises(InvalidRecord, match=rf"^{re.escape(where)}: "):
        encode_stored_json(payload)


def test_text_that_only_looks_like_an_escaped_nul_is_accepted() -> None:
    assert encode_stored_json({"s": "\\u0000"}) == b'{"s":"\\\\u0000"}'


def test_string_subclasses_such_as_str_enums_encode_as_their_text() -> None:
    from enum import StrEnum

    class Side(StrEnum):
        SELL = "sell"

    assert encode_stored_json({"side": Side.SELL}) == b'{"side":"sell"}'


def test_timestamps_are_utc_with_microseconds_whatever_the_zone() -> None:
    instant = datetime(2026, 3, 20, 13, 30, tzinfo=UTC)
    new_york = instant.astimezone(ZoneInfo("America/New_York"))
    plus_five_thirty = instant.astimezone(timezone(timedelta(hours=5, minutes=30)))
    expected = "2026-03-20T13:30:00.000000+00:00"
    assert canonical_timestamp(instant) == expected
    assert canonical_timestamp(new_york) == expected
    assert canonical_timestamp(plus_five_thirty) == expected
    assert canonical_utc_timestamp(instant.replace(tzinfo=None)) == expected


@given(st.datetimes(timezones=st.timezones()))
def test_timestamp_of_any_zone_equals_that_of_its_utc_wall_time(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    assert canonical_timestamp(moment) == canonical_utc_timestamp(utc.replace(tzinfo=None))


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(InvalidRecord, match="no timezone"):
        canonical_timestamp(datetime(2026, 3, 20, 13, 30))  # noqa: DTZ001


def test_canonical_encoding_is_the_sorted_compact_json_array_of_the_row() -> None:
    event_id = UUID("0190f3c5-8d7e-7a4b-9c3d-2e1f0a9b8c7d")
    payload = {"b": [1, {"y": None, "x": "é"}], "a": "1.10"}
    metadata = {"producer": "risk", "schema_version": 1}
    tail = canonical_tail(
        str(event_id),
        "RiskReserved",
        "5WT00001",
        "2026-03-20T13:30:00.000000+00:00",
        encode_json(payload),
        encode_json(metadata),
    )
    defined = orjson.dumps(
        [
            7,
            str(event_id),
            "RiskReserved",
            "5WT00001",
            "2026-03-20T13:30:00.000000+00:00",
            payload,
            metadata,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    assert canonical_encoding(7, tail) == defined


def test_the_chain_starts_from_32_zero_bytes_and_hashes_prev_then_row() -> None:
    assert GENESIS_HASH == b"\x00" * 32
    assert chain_hash(GENESIS_HASH, b"[1]") == hashlib.sha256(b"\x00" * 32 + b"[1]").digest()


def test_the_hash_of_a_known_row_never_changes() -> None:
    # The encoding is a storage format: a change here breaks every stored chain.
    occurred_at = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
    payload = {"n": 1, "note": "é"}
    metadata = {"producer": "test", "schema_version": 1, "malformed": False}
    event_id = "0190f3c5-8d7e-7a4b-9c3d-2e1f0a9b8c7d"
    tail = canonical_tail(
        event_id,
        "Ping",
        None,
        canonical_timestamp(occurred_at),
        encode_json(payload),
        encode_json(metadata),
    )
    assert (
        canonical_encoding(1, tail)
        == (
            '[1,"0190f3c5-8d7e-7a4b-9c3d-2e1f0a9b8c7d","Ping",null,'
            '"2026-01-02T14:30:00.000000+00:00",{"n":1,"note":"é"},'
            '{"malformed":false,"producer":"test","schema_version":1}]'
        ).encode()
    )
    digest = row_hash(GENESIS_HASH, 1, event_id, "Ping", None, occurred_at, payload, metadata)
    assert digest.hex() == "0f38c42c716ee76f39bf460a40eae4893442441afb64ba2fb8f3a8c56709af81"
