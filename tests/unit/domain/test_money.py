"""Tick rounding: the marketable direction is credits down, debits up (DOMAIN.md 5)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.domain.money import marketable

D = Decimal


@pytest.mark.parametrize(
    ("price", "rounded"),
    [
        ("2.456", "2.45"),  # a credit: ask for less
        ("2.451", "2.45"),
        ("2.45", "2.45"),
        ("-0.631", "-0.64"),  # a debit: offer more
        ("-0.63", "-0.63"),
        ("-0.6300001", "-0.64"),
        ("0.009", "0.00"),
    ],
)
def test_credits_round_down_and_debits_round_up(price: str, rounded: str) -> None:
    assert marketable(D(price)) == D(rounded)


def test_a_price_that_is_not_finite_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        marketable(D("NaN"))
