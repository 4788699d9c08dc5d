"""DOMAIN.md 4-5: a Trident's figures at a credit, and order prices back to total credit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.contracts.risk import RiskTemplate
from libs.domain.trident import (
    order_unit,
    total_credit_from_order_price,
    trident_risk,
    trident_risk_at_order_price,
)
from services.risk.core import AccountRisk, Budget, check

D = Decimal


def test_trident_figures() -> None:
    # W = 3, total credit 1.50 per share: 600 capital, 150 profit, 450 risk.
    r = trident_risk(D(3), D("1.50"))
    assert r.required_capital == D(600)
    assert r.max_profit == D("150.00")
    assert r.max_risk == D("450.00")
    assert r.total_credit == D("1.50")


def test_trident_figures_with_a_half_cent_mid() -> None:
    r = trident_risk(D(5), D("2.355"))
    assert r.max_risk == D("764.500")
    assert r.max_profit + r.max_risk == r.required_capital


def test_zero_credit_risks_the_whole_capital() -> None:
    r = trident_risk(D(9), D(0))
    assert r.max_risk == r.required_capital == D(1800)


@pytest.mark.parametrize("width", [D(0), D(-3), D("NaN")])
def test_width_must_be_positive(width: Decimal) -> None:
    with pytest.raises(ValueError, match="width must be positive"):
        trident_risk(width, D(1))


def test_credit_must_be_finite() -> None:
    with pytest.raises(ValueError, match="total_credit must be finite"):
        trident_risk(D(3), D("Infinity"))


def test_order_unit() -> None:
    assert order_unit(includes_call_spread=True) == 1  # 2:2:1:1
    assert order_unit(includes_call_spread=False) == 2  # 2:2


def test_order_price_with_calls_is_the_total_credit() -> None:
    assert total_credit_from_order_price(D("2.10"), includes_call_spread=True) == D("2.10")


def test_order_price_without_calls_is_one_put_spread() -> None:
    assert total_credit_from_order_price(D("1.05"), includes_call_spread=False) == D("2.10")


@pytest.mark.parametrize("price", [D(0), D("-1.05"), D("NaN")])
def test_order_price_must_be_a_positive_credit(price: Decimal) -> None:
    with pytest.raises(ValueError, match="positive credit"):
        total_credit_from_order_price(price, includes_call_spread=True)


def test_risk_at_the_order_actually_sent() -> None:
    # 2:2 at W = 3 priced 0.80 per put spread: total credit 1.60, max risk 600 - 160.
    r = trident_risk_at_order_price(D(3), D("0.80"), includes_call_spread=False)
    assert (r.total_credit, r.max_risk) == (D("1.60"), D("440.00"))
    r = trident_risk_at_order_price(D(3), D("0.80"), includes_call_spread=True)
    assert (r.total_credit, r.max_risk) == (D("0.80"), D("520.00"))


def test_a_lower_limit_credit_means_more_risk() -> None:
    mid = trident_risk_at_order_price(D(5), D("2.40"), includes_call_spread=True)
    custom = trident_risk_at_order_price(D(5), D("2.20"), includes_call_spread=True)
    assert custom.max_risk - mid.max_risk == D("20.00")


def test_credit_above_twice_the_width_cannot_be_checked() -> None:
    r = trident_risk(D(3), D("6.01"))
    assert r.max_risk < 0
    with pytest.raises(ValueError, match="trade_max_risk cannot be negative"):
        check(Budget(AccountRisk(RiskTemplate.CONSERVATIVE, D(10000))), r.max_risk)


@pytest.mark.parametrize("width", [D(3), D(5), D(7), D(9)])
def test_figures_of_several_tridents(width: Decimal) -> None:
    r = trident_risk(width, D("2.46"), quantity=2)
    assert r.required_capital == 2 * width * 100 * 2
    assert r.max_profit == D("246.00")
    assert r.max_risk == 4 * width * 100 - D("246.00")
