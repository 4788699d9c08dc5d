"""DOMAIN.md 3-4: leg prices, credits, risk figures and position Greeks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from vollib.black_scholes.greeks.analytical import delta, gamma, theta, vega
from vollib.black_scholes.implied_volatility import implied_volatility

from services.strategy.core import Snapshot, decide
from services.strategy.core.pricing import Credit, total_credit
from tests.unit.strategy.builders import FEB_20, chain_rows, snapshot_dict

D = Decimal
HAND_QUOTES = {
    "592": {"put": ("5.10", "5.20"), "call": ("8.00", "8.12")},
    "589": {"put": ("4.00", "4.10"), "call": ("9.90", "10.05")},
    "595": {"put": ("6.55", "6.70"), "call": ("6.40", "6.51")},
}


def hand_snapshot(**kwargs: Any) -> Snapshot:
    data = snapshot_dict(**kwargs)
    data["chain"][0]["strikes"] = [
        {
            "strike": strike,
            "put": {"bid": q["put"][0], "ask": q["put"][1]},
            "call": {"bid": q["call"][0], "ask": q["call"][1]},
        }
        for strike, q in HAND_QUOTES.items()
    ]
    return Snapshot.model_validate(data)


def test_credits_and_risk_of_the_worked_example() -> None:
    p = decide(hand_snapshot()).proposal
    assert p is not None
    assert [leg.mid for leg in p.legs] == [D("5.15"), D("4.05"), D("8.06"), D("6.455")]
    # put: natural 5.10 - 4.10, mid 5.15 - 4.05; call: natural 8.00 - 6.51, mid 8.06 - 6.455
    assert p.put_spread_credit == Credit(D("1.00"), D("1.10"))
    assert p.call_spread_credit == Credit(D("1.49"), D("1.605"))
    assert p.total_credit == Credit(D("3.49"), D("3.805"))
    assert p.max_profit == D("380.5")
    assert p.max_risk == 600 - D("380.5")
    assert p.required_capital == 600


def test_without_calls_total_credit_is_twice_the_put_credit() -> None:
    p = decide(hand_snapshot(closes=["570"] * 19)).proposal
    assert p is not None
    assert p.total_credit == Credit(D("2.00"), D("2.20"))
    assert p.max_risk == 600 - 220


def test_total_credit_counts_the_put_spread_twice() -> None:
    total = total_credit(Credit(D("1"), D("1.5")), Credit(D("0.5"), D("0.7")))
    assert total == Credit(D("2.5"), D("3.7"))


def test_position_greeks_are_signed_quantity_weighted_sums_of_vollib() -> None:
    snap = Snapshot.model_validate(snapshot_dict())
    p = decide(snap).proposal
    assert p is not None
    assert p.greeks is not None
    s, t, r = 591.0, 46 / 365, 0.045
    expected = [0.0, 0.0, 0.0, 0.0]
    for leg in p.legs:
        flag = "c" if leg.symbol.option_type.value == "CALL" else "p"
        k = float(leg.symbol.strike)
        sigma = implied_volatility(float(leg.mid), s, k, t, r, flag)
        sign = 1 if leg.action.is_buy else -1
        for i, fn in enumerate((delta, gamma, theta, vega)):
            expected[i] += sign * leg.quantity * 100 * float(fn(flag, s, k, t, r, sigma))
    got = [p.greeks.delta, p.greeks.gamma, p.greeks.theta, p.greeks.vega]
    for g, e in zip(got, expected, strict=True):
        assert abs(float(g) - e) < 1e-3


def test_snapshot_rate_overrides_the_default() -> None:
    data = snapshot_dict()
    base = decide(Snapshot.model_validate(data)).proposal
    data["risk_free_rate"] = "0.10"
    other = decide(Snapshot.model_validate(data)).proposal
    assert base is not None
    assert other is not None
    assert base.greeks != other.greeks


def test_greeks_are_none_when_iv_cannot_be_implied() -> None:
    data = snapshot_dict(chain={FEB_20: chain_rows(range(580, 606), D(591), FEB_20)})
    for row in data["chain"][0]["strikes"]:
        if row["strike"] == "592":
            # Above the put's upper bound 592 x e^(-rT) = 588.65: no IV implies it. (A call
            # below its lower bound would also do, but makes the total credit negative,
            # which is now NO_CREDIT before the Greeks are computed.)
            row["put"] = {"bid": "590.00", "ask": "590.10"}
    p = decide(Snapshot.model_validate(data)).proposal
    assert p is not None
    assert p.greeks is None
    assert "greeks unavailable" in decide(Snapshot.model_validate(data)).reason
