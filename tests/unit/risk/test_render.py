"""The ``"risk"`` object of ``senex suggest --json``."""

from __future__ import annotations

import json
from decimal import Decimal

from services.risk.core import risk_json

D = Decimal
KEYS = {
    "tradeable_capital",
    "tolerance",
    "available",
    "used",
    "remaining",
    "utilisation",
    "passed",
    "warning",
}


def test_risk_object() -> None:
    out = risk_json(
        buying_power=D("19000.00"),
        positions_max_risk=[D("230.00"), D("5770.00")],
        template="conservative",
        stressed=False,
        trade_max_risk=D("500.00"),
    )
    assert out == {
        "tradeable_capital": "25000.00",
        "tolerance": "0.40",
        "available": "10000.0000",
        "used": "6000.00",
        "remaining": "4000.0000",
        "utilisation": "0.65",
        "passed": True,
        "warning": "WARNING",
    }
    assert json.loads(json.dumps(out)) == out


def test_risk_object_over_budget() -> None:
    out = risk_json(
        buying_power=D("10000.00"),
        positions_max_risk=[],
        template="moderate",
        stressed=False,
        trade_max_risk=D("5000.01"),
    )
    assert set(out) == KEYS
    assert out["used"] == "0"
    assert out["remaining"] == "5000.0000"
    assert out["passed"] is False
    assert out["warning"] == "CRITICAL"


def test_risk_object_stressed_uses_the_capped_tolerance() -> None:
    out = risk_json(
        buying_power=D("10000"),
        positions_max_risk=[],
        template="aggressive",
        stressed=True,
        trade_max_risk=D("6000"),
    )
    assert (out["tolerance"], out["available"], out["passed"]) == ("0.60", "6000.00", True)
    assert out["utilisation"] == "1"


def test_risk_object_without_budget() -> None:
    out = risk_json(
        buying_power=D("0.00"),
        positions_max_risk=[],
        template="conservative",
        stressed=False,
        trade_max_risk=D("450.00"),
    )
    assert out["utilisation"] is None
    assert out["passed"] is False
    assert out["warning"] == "CRITICAL"


def test_risk_object_without_a_trade() -> None:
    out = risk_json(
        buying_power=D("19000.00"),
        positions_max_risk=[D("6000.00")],
        template="conservative",
        stressed=False,
        trade_max_risk=None,
    )
    assert set(out) == KEYS
    assert out["utilisation"] == "0.6"
    assert out["passed"] is None
    assert out["warning"] == "NONE"
