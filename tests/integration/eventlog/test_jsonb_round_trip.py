"""The canonical encoding survives real PostgreSQL jsonb, not only the unit tests' model."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from libs.eventlog.canonical import encode_json, encode_stored_json
from tests.unit.eventlog.strategies import payloads


@pytest.fixture(scope="module")
def pg(database_url: str) -> Iterator[psycopg.Connection[tuple[str]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads)
def test_what_append_stores_reads_back_to_the_same_bytes(
    pg: psycopg.Connection[tuple[str]], payload: dict[str, object]
) -> None:
    stored = encode_stored_json(payload)
    row = pg.execute("SELECT %s::jsonb::text", (stored.decode(),)).fetchone()
    assert row is not None
    assert encode_json(orjson.loads(row[0])) == stored
