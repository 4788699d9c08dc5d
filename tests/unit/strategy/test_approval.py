"""Limit prices of approvals (DOMAIN.md 5): order units, custom credits, automation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.errors import NoCredit, ValidationFailed
from libs.domain.money import TICK
from libs.domain.money import marketable as round_credit
from libs.domain.trident import order_unit
from services.strategy.core.approval import automatic_limit, manual_limit


def price_unit(calls: bool) -> int:
    return order_unit(includes_call_spread=calls)


D = Decimal


def test_with_the_call_spread_the_limit_is_the_total_mid_credit() -> None:
    # 2 x put 1.425 + call 0.66 = 3.51
    assert manual_limit(D("3.51"), includes_call_spread=True) == D("3.51")


def test_without_the_call_spread_the_limit_is_one_put_spreads_credit() -> None:
    assert manual_limit(D("2.85"), includes_call_spread=False) == D("1.42")  # 1.425 down


def test_a_custom_credit_is_in_total_units_and_converted_for_2_2() -> None:
    assert manual_limit(D("3.51"), True, custom_credit=D("3.40")) == D("3.40")
    assert manual_limit(D("2.85"), False, custom_credit=D("2.70")) == D("1.35")
    assert manual_limit(D("2.85"), False, custom_credit=D("2.71")) == D("1.35")  # 1.355 down


def test_credits_round_down_to_the_tick() -> None:
    assert round_credit(D("1.4299")) == D("1.42")
    assert round_credit(D("1.43")) == D("1.43")


def test_no_positive_credit_is_refused() -> None:
    with pytest.raises(NoCredit):
        manual_limit(D("0.009"), True)
    with pytest.raises(NoCredit):
        manual_limit(D("-0.50"), True)
    with pytest.raises(NoCredit):
        manual_limit(D("3.00"), False, custom_credit=D("0.01"))  # 0.005 -> 0.00


def test_automatic_price_concedes_the_offset_toward_natural() -> None:
    assert automatic_limit(D("3.51"), D("3.20"), True, offset_cents=0) == D("3.51")
    assert automatic_limit(D("3.51"), D("3.20"), True, offset_cents=5) == D("3.46")
    # never beyond the natural price
    assert automatic_limit(D("3.51"), D("3.20"), True, offset_cents=100) == D("3.20")


def test_automatic_price_of_a_2_2_trident_is_per_put_spread() -> None:
    # mid 2.85 -> 1.425; natural 2.60 -> 1.30; 3 cents off -> 1.395 -> 1.39
    assert automatic_limit(D("2.85"), D("2.60"), False, offset_cents=3) == D("1.39")


def test_a_crossed_market_keeps_the_mid() -> None:
    assert automatic_limit(D("1.00"), D("1.20"), True, offset_cents=10) == D("1.00")


credits = st.decimals(min_value=D("-5"), max_value=D("20"), places=3)
offsets = st.integers(min_value=0, max_value=1000)


@given(mid=credits, custom=st.none() | credits, calls=st.booleans())
def test_a_manual_limit_is_a_positive_tick_at_or_below_the_asked_credit(
    mid: Decimal, custom: Decimal | None, calls: bool
) -> None:
    asked = (mid if custom is None else custom) / price_unit(calls)
    try:
        limit = manual_limit(mid, calls, custom)
    except NoCredit:
        assert asked < TICK
        return
    assert limit > 0
    assert limit % TICK == 0
    assert asked - TICK < limit <= asked


@given(
    mid=credits,
    spread=st.decimals(min_value=D(0), max_value=D(3), places=3),
    offset=offsets,
    calls=st.booleans(),
)
def test_an_automatic_limit_lies_between_natural_and_mid(
    mid: Decimal, spread: Decimal, offset: int, calls: bool
) -> None:
    natural = mid - spread
    unit = price_unit(calls)
    try:
        limit = automatic_limit(mid, natural, calls, offset)
    except NoCredit:
        assert max(mid / unit - offset * TICK, natural / unit) < TICK
        return
    assert limit % TICK == 0
    assert 0 < limit <= mid / unit
    assert limit > natural / unit - TICK  # at most the rounding below natural
    assert limit > mid / unit - offset * TICK - TICK


@pytest.mark.parametrize("custom", ["6.01", "1e26", "1e30"])
def test_a_custom_credit_above_twice_the_width_is_refused_naming_the_field(custom: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        manual_limit(Decimal("1.50"), True, Decimal(custom), width=Decimal(3))
    assert raised.value.field == "custom_credit"


def test_a_custom_credit_of_exactly_twice_the_width_is_a_price() -> None:
    assert manual_limit(Decimal("1.50"), True, Decimal("6.00"), width=Decimal(3)) == Decimal("6.00")
