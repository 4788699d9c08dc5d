"""``clock.parse_instant``: the ``--start`` parser of both simulator command lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.simulator.clock import START_EXAMPLE, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2025-06-03T11:00:00-04:00",
            datetime(2025, 6, 3, 11, tzinfo=timezone(timedelta(hours=-4))),
        ),
        ("2025-06-03T15:00:00Z", datetime(2025, 6, 3, 15, tzinfo=UTC)),
        (" 2025-06-03 15:00:00+00:00 ", datetime(2025, 6, 3, 15, tzinfo=UTC)),
    ],
)
def test_instants_with_an_offset_parse(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2025-06-03T11:00:00", "no UTC offset"),
        ("2025-06-03", "no UTC offset"),
        ("", "not an ISO-8601 instant"),
        ("11:00 tomorrow", "not an ISO-8601 instant"),
    ],
)
def test_naive_or_malformed_instants_are_refused_with_an_example(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as raised:
        parse_instant(text)
    assert START_EXAMPLE in str(raised.value)
