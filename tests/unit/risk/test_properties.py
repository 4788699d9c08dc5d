"""Properties of the budget: no pass over-commits, figures add up, utilisation is monotone."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.risk import RiskTemplate
from libs.domain.trident import total_credit_from_order_price, trident_risk
from services.risk.core import (
    AccountRisk,
    Budget,
    check,
    reserve,
    severity,
    tolerance,
    warning_level,
)

D = Decimal

templates = st.sampled_from(list(RiskTemplate))
buying_powers = st.decimals(min_value=D(-20000), max_value=D(500000), places=2)
risks = st.decimals(min_value=D(0), max_value=D(20000), places=2)
positions = st.lists(st.decimals(min_value=D(0), max_value=D(2000), places=2), max_size=30)


@st.composite
def accounts(draw: st.DrawFn) -> AccountRisk:
    return AccountRisk.of_positions(draw(templates), draw(buying_powers), draw(positions))


@st.composite
def budgets(draw: st.DrawFn) -> Budget:
    return Budget(draw(accounts()), stressed=draw(st.booleans()), reserved_risk=draw(risks))


@given(budgets(), risks)
def test_remaining_never_negative_after_a_pass(budget: Budget, trade: Decimal) -> None:
    result = check(budget, trade)
    if result.passed:
        assert result.assessment.remaining_risk - trade >= 0
        assert result.assessment.available_risk > 0
    else:
        assert budget.available <= 0 or trade > budget.remaining


@given(accounts(), st.booleans(), st.lists(risks, max_size=40))
def test_sequential_reservations_never_over_commit(
    account: AccountRisk, stressed: bool, amounts: list[Decimal]
) -> None:
    pending: dict[int, Decimal] = {}
    for key, amount in enumerate(amounts):
        result = reserve(account, pending, key, amount, stressed=stressed)
        pending = dict(result.reserved)
        budget = Budget(account, stressed=stressed, reserved_risk=sum(pending.values(), D(0)))
        if result.passed:
            assert budget.remaining >= 0
        # Whatever passed, the reservations never exceed what the budget had room for.
        room = max(budget.available - account.open_positions_max_risk, D(0))
        assert sum(pending.values(), D(0)) <= room


@given(accounts(), st.lists(st.tuples(risks, st.booleans()), max_size=40))
def test_mixed_stress_never_exceeds_the_tolerance_each_pass_used(
    account: AccountRisk, requests: list[tuple[Decimal, bool]]
) -> None:
    # A stressed trade may use up to 0.60 of capital: after it, the unstressed remaining can
    # be negative (DOMAIN.md applies the tolerance per trade), but never the one it used.
    pending: dict[int, Decimal] = {}
    for key, (amount, stressed) in enumerate(requests):
        result = reserve(account, pending, key, amount, stressed=stressed)
        pending = dict(result.reserved)
        if result.passed:
            used = account.open_positions_max_risk + sum(pending.values(), D(0))
            applied = tolerance(account.template, stressed=stressed)
            assert used <= account.tradeable_capital * applied


@given(budgets(), risks, risks)
def test_utilisation_and_warning_monotone_in_trade_max_risk(
    budget: Budget, a: Decimal, b: Decimal
) -> None:
    low, high = min(a, b), max(a, b)
    u_low, u_high = budget.utilisation(low), budget.utilisation(high)
    if budget.available <= 0:
        assert u_low is None
        assert u_high is None
    else:
        assert u_low is not None
        assert u_high is not None
        assert u_low <= u_high
    assert severity(budget.warning_level(low)) <= severity(budget.warning_level(high))
    # A trade that fits stays fitting when smaller.
    if budget.fits(high):
        assert budget.fits(low)


@given(budgets(), risks)
def test_assessment_figures_are_consistent(budget: Budget, trade: Decimal) -> None:
    a = budget.assessment(trade)
    account = budget.account
    assert a.tradeable_capital == account.buying_power + account.open_positions_max_risk
    assert a.tolerance == tolerance(a.template, stressed=a.stressed)
    assert a.tolerance <= D("0.60")
    assert a.tolerance >= a.base_tolerance
    assert a.available_risk == a.tradeable_capital * a.tolerance
    assert a.used_risk == account.open_positions_max_risk + budget.reserved_risk
    assert a.remaining_risk == a.available_risk - a.used_risk
    assert a.trade_max_risk == trade
    if a.available_risk > 0:
        assert a.utilisation is not None
        exact = (a.used_risk + trade) / a.available_risk
        assert abs(a.utilisation - exact) <= abs(exact) * D("1e-27")
    else:
        assert a.utilisation is None
    assert a.warning_level is warning_level(a.template, a.used_risk + trade, a.available_risk)


@given(
    st.sampled_from([D(3), D(5), D(7), D(9)]),
    st.decimals(min_value=D("0.01"), max_value=D(9), places=2),
    st.booleans(),
)
def test_order_price_round_trip_and_risk_identity(
    width: Decimal, price: Decimal, includes_call_spread: bool
) -> None:
    credit = total_credit_from_order_price(price, includes_call_spread=includes_call_spread)
    assert credit == (price if includes_call_spread else 2 * price)
    r = trident_risk(width, credit)
    assert r.max_risk + r.max_profit == r.required_capital == 2 * width * 100
