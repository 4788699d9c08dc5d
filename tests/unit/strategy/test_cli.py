"""`senex suggest --snapshot FILE [--json]`, run through the real typer app."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from libs.cli.main import app

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


def test_good_snapshot_prints_the_json_decision() -> None:
    result = runner.invoke(
        app, ["suggest", "--snapshot", str(FIXTURES / "qqq_suggest.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["decision"] == "suggest"
    assert out["reason_code"] is None
    s = out["suggestion"]
    assert (s["expiration"], s["dte"], s["width"]) == ("2026-02-20", 46, "3")
    assert (s["short_strike"], s["put_long_strike"], s["call_long_strike"]) == ("592", "589", "595")
    assert (s["put_spread_quantity"], s["call_spread_quantity"]) == (2, 1)
    assert [leg["symbol"] for leg in s["legs"]] == [
        "QQQ   260220P00592000",
        "QQQ   260220P00589000",
        "QQQ   260220C00592000",
        "QQQ   260220C00595000",
    ]
    assert set(s["greeks"]) == {"delta", "gamma", "theta", "vega"}
    assert isinstance(s["max_risk"], str)


def test_conflicting_snapshot_is_a_reasoned_no_trade() -> None:
    result = runner.invoke(
        app, ["suggest", "--snapshot", str(FIXTURES / "qqq_conflict.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["decision"] == "no_trade"
    assert out["reason_code"] == "CONFLICTING_POSITION"
    assert "589" in out["reason"]
    assert out["suggestion"] is None


def test_readable_summary_shows_legs_credits_risk_and_reasons() -> None:
    result = runner.invoke(app, ["suggest", "--snapshot", str(FIXTURES / "qqq_suggest.json")])
    assert result.exit_code == 0, result.output
    for text in ("SUGGEST QQQ 2026-02-20", "QQQ   260220P00592000", "Credits", "max risk", "Why:"):
        assert text in result.stdout


def test_malformed_snapshot_exits_2_naming_the_field() -> None:
    result = runner.invoke(
        app, ["suggest", "--snapshot", str(FIXTURES / "malformed_bid.json"), "--json"]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "chain.0.strikes.3.put.bid" in lines[0]
    assert "Traceback" not in result.output


def test_missing_field_and_bad_json_exit_2(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "qqq_suggest.json").read_text())
    del data["price"]
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(data))
    result = runner.invoke(app, ["suggest", "--snapshot", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "invalid snapshot: price: Field required"
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = runner.invoke(app, ["suggest", "--snapshot", str(broken)])
    assert result.exit_code == 2
    assert result.stderr.startswith("invalid snapshot: snapshot: not valid JSON")
    result = runner.invoke(app, ["suggest", "--snapshot", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_json_carries_the_risk_budget_from_the_risk_core() -> None:
    result = runner.invoke(
        app, ["suggest", "--snapshot", str(FIXTURES / "qqq_suggest.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    risk = out["risk"]
    # Buying power 20,000 + one open position's max risk 600 (DOMAIN.md 4).
    assert Decimal(risk["tradeable_capital"]) == Decimal(20600)
    assert Decimal(risk["tolerance"]) == Decimal("0.40")
    assert Decimal(risk["available"]) == Decimal(8240)
    assert Decimal(risk["used"]) == Decimal(600)
    assert Decimal(risk["remaining"]) == Decimal(7640)
    max_risk = Decimal(out["suggestion"]["max_risk"])
    utilisation = Decimal(risk["utilisation"])
    assert abs(utilisation - (600 + max_risk) / 8240) < Decimal("1e-20")
    assert risk["passed"] is (max_risk <= 7640)
    assert risk["warning"] == "NONE"


def test_a_no_trade_has_a_budget_but_nothing_to_pass() -> None:
    result = runner.invoke(
        app, ["suggest", "--snapshot", str(FIXTURES / "qqq_conflict.json"), "--json"]
    )
    out = json.loads(result.stdout)
    assert out["risk"]["passed"] is None
    assert Decimal(out["risk"]["remaining"]) == Decimal(7640)


def test_readable_summary_ends_with_the_risk_budget() -> None:
    result = runner.invoke(app, ["suggest", "--snapshot", str(FIXTURES / "qqq_suggest.json")])
    assert "Risk budget: tradeable capital 20600" in result.stdout
    assert "passes" in result.stdout
