"""Snapshot validation: a malformed snapshot names its first bad field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.strategy.core import SnapshotError, decide, load_snapshot
from tests.unit.strategy.builders import snapshot_dict


def broken(change: Any) -> str:
    data = snapshot_dict()
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("price"), "price"),
        (lambda d: d.update(price="-1"), "price"),
        (lambda d: d.update(price="abc"), "price"),
        (lambda d: d.update(daily_closes=d["daily_closes"][:18]), "daily_closes"),
        (lambda d: d.update(as_of="2026-01-05T11:00:00"), "as_of"),
        (lambda d: d.update(underlying="IWM"), "underlying"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["account"].update(buying_power=None), "account.buying_power"),
        (lambda d: d["chain"][0]["strikes"][2]["put"].update(ask="x"), "chain.0.strikes.2.put.ask"),
        (lambda d: d["settings"].update(risk_template="yolo"), "settings.risk_template"),
    ],
)
def test_errors_name_the_field(change: Any, field: str) -> None:
    with pytest.raises(SnapshotError) as info:
        load_snapshot(broken(change))
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_not_json() -> None:
    with pytest.raises(SnapshotError) as info:
        load_snapshot("{")
    assert info.value.field == "snapshot"


def test_duplicate_strikes_are_refused() -> None:
    def dup(d: dict[str, Any]) -> None:
        d["chain"][0]["strikes"].append(d["chain"][0]["strikes"][0])

    with pytest.raises(SnapshotError) as info:
        load_snapshot(broken(dup))
    assert info.value.field == "chain.0"


def test_as_of_in_utc_counts_dte_from_the_new_york_date() -> None:
    data = snapshot_dict(as_of="2026-01-06T03:00:00+00:00")  # 22:00 on Jan 5 in New York
    p = decide(load_snapshot(json.dumps(data))).proposal
    assert p is not None
    assert p.dte == 46
