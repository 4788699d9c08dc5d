"""DOMAIN.md 4, rule by rule: templates, stressed tolerance, capital, budget figures, warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from libs.contracts.risk import RiskAssessment, RiskTemplate, WarningLevel
from services.risk.core import (
    AccountRisk,
    Budget,
    budget_view,
    parse_template,
    severity,
    tolerance,
    utilisation,
    warning_level,
)

D = Decimal
C, M, A = RiskTemplate.CONSERVATIVE, RiskTemplate.MODERATE, RiskTemplate.AGGRESSIVE


@pytest.mark.parametrize(
    ("template", "stressed", "expected"),
    [
        (C, False, "0.40"),
        (M, False, "0.50"),
        (A, False, "0.60"),
        (C, True, "0.60"),  # 0.40 x 1.5 = 0.60: exactly at the cap
        (M, True, "0.60"),  # 0.75 capped
        (A, True, "0.60"),  # 0.90 capped
    ],
)
def test_tolerance_by_template_and_market(
    template: RiskTemplate, stressed: bool, expected: str
) -> None:
    value = tolerance(template, stressed=stressed)
    assert value == D(expected)
    assert str(value) == expected  # the cap reads 0.60, not 0.600


@pytest.mark.parametrize(
    ("name", "expected"),
    [("conservative", C), ("MODERATE", M), ("Aggressive", A), (A, A)],
)
def test_parse_template_any_case(name: str, expected: RiskTemplate) -> None:
    assert parse_template(name) is expected


def test_parse_template_unknown() -> None:
    with pytest.raises(ValueError, match="unknown risk template 'reckless'"):
        parse_template("reckless")


def test_tradeable_capital_is_buying_power_plus_positions_max_risk() -> None:
    account = AccountRisk.of_positions(C, D("20000.00"), [D("1200.00"), D("800.00")])
    assert account.open_positions_max_risk == D("2000.00")
    assert account.tradeable_capital == D("22000.00")


def test_no_positions_capital_is_buying_power() -> None:
    account = AccountRisk.of_positions(M, D("15000.00"), [])
    assert account.open_positions_max_risk == 0
    assert account.tradeable_capital == D("15000.00")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"buying_power": D("NaN")},
        {"buying_power": D("Infinity")},
        {"buying_power": D(1), "open_positions_max_risk": D("-0.01")},
    ],
)
def test_account_rejects_bad_inputs(kwargs: dict[str, Decimal]) -> None:
    with pytest.raises(ValueError, match=r"must be a finite|cannot be negative"):
        AccountRisk(C, **kwargs)


def test_of_positions_rejects_a_negative_max_risk() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        AccountRisk.of_positions(C, D(1000), [D(10), D(-1)])


def test_budget_rejects_negative_reservations() -> None:
    with pytest.raises(ValueError, match="reserved_risk cannot be negative"):
        Budget(AccountRisk(C, D(1000)), reserved_risk=D(-1))


def test_budget_figures() -> None:
    account = AccountRisk.of_positions(C, D("20000.00"), [D("1200.00"), D("800.00")])
    budget = Budget(account, stressed=False, reserved_risk=D("500.00"))
    assert budget.tradeable_capital == D("22000.00")
    assert budget.available == D("8800.00")  # 22000 x 0.40, exact (8800.0000)
    assert budget.used == D("2500.00")
    assert budget.remaining == D("6300.00")
    assert budget.utilisation(D("300.00")) == D("2800") / D("8800")
    assert budget.fits(D("6300.00"))
    assert not budget.fits(D("6300.01"))


def test_stressed_budget_uses_the_capped_tolerance() -> None:
    account = AccountRisk(M, D("10000.00"))
    assert Budget(account).available == D("5000.00")
    assert Budget(account, stressed=True).available == D("6000.00")  # not 7500


def test_available_is_not_rounded() -> None:
    budget = Budget(AccountRisk(C, D("10000.01")))
    assert budget.available == D("4000.004")
    assert str(budget.available) == "4000.0040"


@pytest.mark.parametrize("buying_power", [D(0), D("0.00"), D("-2500.00")])
def test_no_budget_fails_everything(buying_power: Decimal) -> None:
    budget = Budget(AccountRisk(A, buying_power))
    assert budget.available <= 0
    assert not budget.fits(D(0))  # even a trade of no risk
    assert not budget.fits(D(100))
    assert budget.utilisation(D(100)) is None
    assert budget.warning_level(D(0)) is WarningLevel.CRITICAL


def test_negative_buying_power_offset_by_positions() -> None:
    # Buying power is negative but open positions' max risk keeps capital positive.
    account = AccountRisk.of_positions(C, D("-1000.00"), [D("6000.00")])
    budget = Budget(account)
    assert budget.tradeable_capital == D("5000.00")
    assert budget.available == D("2000.00")
    assert budget.remaining == D("-4000.00")  # already over budget
    assert not budget.fits(D(0))
    assert budget.utilisation() == D(3)


@pytest.mark.parametrize(
    ("template", "warning", "critical"),
    [(C, "6500", "8000"), (M, "7000", "8500"), (A, "7500", "9000")],
)
def test_warning_boundaries(template: RiskTemplate, warning: str, critical: str) -> None:
    available = D(10000)
    cent = D("0.01")
    w, c = D(warning), D(critical)
    assert warning_level(template, w - cent, available) is WarningLevel.NONE
    assert warning_level(template, w, available) is WarningLevel.WARNING  # at = reached
    assert warning_level(template, c - cent, available) is WarningLevel.WARNING
    assert warning_level(template, c, available) is WarningLevel.CRITICAL
    assert warning_level(template, available, available) is WarningLevel.CRITICAL
    assert warning_level(template, available * 2, available) is WarningLevel.CRITICAL
    assert warning_level(template, D(0), available) is WarningLevel.NONE


@pytest.mark.parametrize(
    ("positions", "trade", "expected"),
    [
        ("6000.00", "499.99", WarningLevel.NONE),
        ("6000.00", "500.00", WarningLevel.WARNING),  # 65.00 % exactly
        ("6000.00", "1999.99", WarningLevel.WARNING),
        ("6000.00", "2000.00", WarningLevel.CRITICAL),  # 80.00 % exactly
        ("0", "6500.00", WarningLevel.WARNING),
    ],
)
def test_conservative_warning_after_the_trade(
    positions: str, trade: str, expected: WarningLevel
) -> None:
    # Buying power 19,000 + 6,000 of positions = 25,000 capital; available 10,000.
    account = AccountRisk(C, D(25000) - D(positions), D(positions))
    budget = Budget(account)
    assert budget.available == D(10000)
    assert budget.warning_level(D(trade)) is expected


def test_thresholds_do_not_move_with_stress() -> None:
    # Stressed conservative: available = 10,000 x 0.60 = 6,000; 65 % of that is 3,900.
    budget = Budget(AccountRisk(C, D(10000)), stressed=True)
    assert budget.available == D(6000)
    assert budget.warning_level(D("3899.99")) is WarningLevel.NONE
    assert budget.warning_level(D("3900")) is WarningLevel.WARNING
    assert budget.warning_level(D("4800")) is WarningLevel.CRITICAL


def test_warning_compares_exactly_not_the_rounded_ratio() -> None:
    # 1.94999...9 (29 decimals) / 3 rounds to 0.65 at 28 digits, but is below 65 %.
    exposure = D("1.94999999999999999999999999999")
    assert utilisation(exposure, D(3)) == D("0.65")
    assert warning_level(C, exposure, D(3)) is WarningLevel.NONE


def test_utilisation_undefined_without_budget() -> None:
    assert utilisation(D(0), D(0)) is None
    assert utilisation(D(5), D(-1)) is None
    assert utilisation(D(0), D(1)) == 0


def test_severity_orders_levels() -> None:
    levels = [WarningLevel.CRITICAL, WarningLevel.NONE, WarningLevel.WARNING]
    assert sorted(levels, key=severity) == [
        WarningLevel.NONE,
        WarningLevel.WARNING,
        WarningLevel.CRITICAL,
    ]


def test_assessment_is_complete_and_valid() -> None:
    account = AccountRisk.of_positions(M, D("18000.00"), [D("2000.00")])
    budget = Budget(account, stressed=False, reserved_risk=D("1000.00"))
    a = budget.assessment(D("4000.00"))
    assert a == RiskAssessment(
        template=M,
        base_tolerance=D("0.50"),
        stressed=False,
        tolerance=D("0.50"),
        buying_power=D("18000.00"),
        tradeable_capital=D("20000.00"),
        available_risk=D("10000.00"),
        used_risk=D("3000.00"),
        remaining_risk=D("7000.00"),
        trade_max_risk=D("4000.00"),
        utilisation=D("0.7"),
        warning_level=WarningLevel.WARNING,
        dry_run_buying_power_change=None,
    )
    assert RiskAssessment.model_validate_json(a.model_dump_json()) == a


def test_assessment_of_a_stressed_trade_shows_both_tolerances() -> None:
    a = Budget(AccountRisk(A, D("10000")), stressed=True).assessment(D(0))
    assert (a.base_tolerance, a.tolerance, a.stressed) == (D("0.60"), D("0.60"), True)
    a = Budget(AccountRisk(C, D("10000")), stressed=True).assessment(D(0))
    assert (a.base_tolerance, a.tolerance) == (D("0.40"), D("0.60"))


def test_assessment_without_budget_has_null_utilisation() -> None:
    a = Budget(AccountRisk(C, D("-10.00"))).assessment(D("100"))
    assert a.utilisation is None
    assert a.warning_level is WarningLevel.CRITICAL
    assert a.remaining_risk == D("-4.0000")


def test_assessment_rejects_a_negative_trade_max_risk() -> None:
    with pytest.raises(ValueError, match="trade_max_risk cannot be negative"):
        Budget(AccountRisk(C, D(1000))).assessment(D("-0.01"))


def test_budget_view() -> None:
    as_of = datetime(2026, 1, 12, 15, 0, tzinfo=UTC)
    account = AccountRisk.of_positions(C, D("23000.00"), [D("1000.00"), D("1000.00")])
    view = budget_view(
        account,
        reserved_risk=D("500.00"),
        open_positions=2,
        as_of=as_of,
        stressed_underlyings=["SPY", "QQQ", "SPY"],
    )
    assert view.tradeable_capital == D("25000.00")
    assert view.base_tolerance == D("0.40")
    assert view.available_risk == D("10000.00")
    assert view.open_positions_max_risk == D("2000.00")
    assert view.reserved_risk == D("500.00")
    assert view.used_risk == D("2500.00")
    assert view.remaining_risk == D("7500.00")
    assert view.utilisation == D("0.25")
    assert view.warning_level is WarningLevel.NONE
    assert view.stressed_underlyings == ("QQQ", "SPY")
    assert view.open_positions == 2


def test_budget_view_without_budget() -> None:
    view = budget_view(
        AccountRisk(C, D(0)),
        reserved_risk=D(0),
        open_positions=0,
        as_of=datetime(2026, 1, 12, tzinfo=UTC),
    )
    assert view.utilisation is None
    assert view.remaining_risk == 0
    assert view.warning_level is WarningLevel.CRITICAL


def test_budget_view_warns_at_the_templates_threshold() -> None:
    view = budget_view(
        AccountRisk(C, D("10000.00")),
        reserved_risk=D("2600.00"),  # 65 % of 4,000
        open_positions=0,
        as_of=datetime(2026, 1, 12, tzinfo=UTC),
    )
    assert view.warning_level is WarningLevel.WARNING
