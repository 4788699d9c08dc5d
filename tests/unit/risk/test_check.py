"""The verdicts: budget check, warning gate, reservations, the broker's dry run."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from libs.broker.models import BuyingPowerEffect, DryRunResult
from libs.contracts.errors import (
    ErrorKind,
    InsufficientBuyingPower,
    RiskBudgetExceeded,
    RiskWarningUnconfirmed,
)
from libs.contracts.risk import RiskTemplate, WarningLevel
from libs.contracts.strategy import SuggestionApproved
from services.risk.core import (
    AccountRisk,
    Approval,
    Budget,
    DryRunVerdict,
    check,
    reserve,
    warning_gate,
)

D = Decimal
C = RiskTemplate.CONSERVATIVE
NONE, WARNING, CRITICAL = WarningLevel.NONE, WarningLevel.WARNING, WarningLevel.CRITICAL

#: Capital 25,000 (19,000 buying power + 6,000 open), conservative: available 10,000,
#: used 6,000, remaining 4,000. A trade of 500 reaches 65 %, of 2,000 reaches 80 %.
ACCOUNT = AccountRisk(C, D("19000.00"), D("6000.00"))
BUDGET = Budget(ACCOUNT)


def verdict(
    new_buying_power: str = "15000.00", change: str = "-600.00", errors: tuple[str, ...] = ()
) -> DryRunVerdict:
    return DryRunVerdict(D(new_buying_power), D(change), D("15600.00"), errors)


# --- check ---------------------------------------------------------------------------


def test_a_trade_within_the_budget_passes() -> None:
    result = check(BUDGET, D("450.00"))
    assert result.passed
    assert result.failure is None
    assert result.assessment.remaining_risk == D("4000.00")
    assert result.assessment.warning_level is NONE


def test_a_trade_exactly_at_remaining_passes() -> None:
    result = check(BUDGET, D("4000.00"))
    assert result.passed
    assert result.assessment.utilisation == 1
    assert result.assessment.warning_level is CRITICAL  # passes, with its warning


def test_a_cent_over_remaining_fails_with_the_numbers() -> None:
    result = check(BUDGET, D("4000.01"))
    assert not result.passed
    failure = result.failure
    assert failure is not None
    assert failure.kind is ErrorKind.RISK_BUDGET_EXCEEDED
    assert "max risk 4000.01 exceeds the remaining risk budget 4000.0000" in failure.message
    assert failure.details["available_risk"] == "10000.0000"
    assert failure.details["used_risk"] == "6000.00"
    assert failure.details["tradeable_capital"] == "25000.00"
    assert failure.details["tolerance"] == "0.40"
    error = failure.error()
    assert isinstance(error, RiskBudgetExceeded)
    assert error.to_reply().kind is ErrorKind.RISK_BUDGET_EXCEEDED
    assert error.to_reply().details["trade_max_risk"] == "4000.01"


def test_reservations_count_as_used() -> None:
    budget = Budget(ACCOUNT, reserved_risk=D("3600.00"))
    assert check(budget, D("400.00")).passed
    assert not check(budget, D("400.01")).passed


def test_stress_raises_the_budget() -> None:
    stressed = Budget(ACCOUNT, stressed=True)  # available 15,000
    assert not check(BUDGET, D("5000")).passed
    assert check(stressed, D("5000")).passed


@pytest.mark.parametrize("buying_power", [D(0), D("-100.00")])
def test_no_budget_fails_even_a_riskless_trade(buying_power: Decimal) -> None:
    result = check(Budget(AccountRisk(C, buying_power)), D(0))
    assert result.failure is not None
    assert result.failure.kind is ErrorKind.RISK_BUDGET_EXCEEDED
    assert result.failure.message.startswith("no risk budget: available risk is ")
    assert result.assessment.utilisation is None


def test_check_rejects_a_negative_max_risk() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        check(BUDGET, D(-1))


# --- warning gate --------------------------------------------------------------------


def _at(level: WarningLevel) -> Decimal:
    return {NONE: D("100"), WARNING: D("500"), CRITICAL: D("2000")}[level]


@pytest.mark.parametrize(
    ("level", "approval", "refused"),
    [
        (NONE, Approval(), False),
        (WARNING, Approval(), True),
        (CRITICAL, Approval(), True),
        (WARNING, Approval(warning_level=WARNING, warning_confirmed=True), False),
        (CRITICAL, Approval(warning_level=CRITICAL, warning_confirmed=True), False),
        (WARNING, Approval(warning_level=CRITICAL, warning_confirmed=True), False),
        # The re-check reached a level the user was not shown.
        (CRITICAL, Approval(warning_level=WARNING, warning_confirmed=True), True),
        (WARNING, Approval(warning_level=NONE, warning_confirmed=True), True),
        # The automation cannot confirm: a warning leaves the trade to the user.
        (NONE, Approval(automatic=True), False),
        (WARNING, Approval(automatic=True), True),
        (CRITICAL, Approval(automatic=True), True),
    ],
)
def test_warning_gate(level: WarningLevel, approval: Approval, refused: bool) -> None:
    assessment = BUDGET.assessment(_at(level))
    assert assessment.warning_level is level
    failure = warning_gate(assessment, approval)
    assert (failure is not None) is refused
    if failure is not None:
        assert failure.kind is ErrorKind.RISK_WARNING_UNCONFIRMED
        assert isinstance(failure.error(), RiskWarningUnconfirmed)
        assert failure.details["warning_level"] == level.value


def test_warning_gate_message() -> None:
    failure = warning_gate(BUDGET.assessment(D(500)), Approval())
    assert failure is not None
    assert failure.message == (
        "utilisation after the trade would be 65.00 %, WARNING for the conservative template "
        "(at or above 65.00 %); the approval did not confirm the warning"
    )
    assert failure.details["utilisation"] == "0.65"
    assert failure.details["threshold"] == "0.65"


def test_warning_gate_reads_a_suggestion_approved_event() -> None:
    approved = SuggestionApproved(
        occurred_at=datetime(2026, 1, 12, 15, tzinfo=UTC),
        producer="gateway",
        account_id="5WT00001",
        correlation_id=uuid4(),
        suggestion_id=uuid4(),
        limit_credit=D("2.40"),
        approved_by="alice",
        warning_level=WARNING,
        warning_confirmed=True,
    )
    assert warning_gate(BUDGET.assessment(D(500)), approved) is None
    assert warning_gate(BUDGET.assessment(D(2000)), approved) is not None


# --- reservations --------------------------------------------------------------------


def test_a_reservation_that_fits_is_added() -> None:
    result = reserve(ACCOUNT, {}, "s1", D("1500.00"), stressed=False)
    assert result.passed
    assert dict(result.reserved) == {"s1": D("1500.00")}
    assert result.check.assessment.used_risk == D("6000.00")
    assert result.check.assessment.trade_max_risk == D("1500.00")


def test_two_reservations_that_together_exceed_cannot_both_pass() -> None:
    first = reserve(ACCOUNT, {}, "s1", D("2500.00"), stressed=False)
    second = reserve(ACCOUNT, first.reserved, "s2", D("2500.00"), stressed=False)
    assert first.passed
    assert not second.passed
    assert second.check.failure is not None
    assert second.check.failure.kind is ErrorKind.RISK_BUDGET_EXCEEDED
    assert second.reserved == first.reserved
    assert second.check.assessment.used_risk == D("8500.00")


def test_a_failed_reservation_leaves_the_set_unchanged() -> None:
    pending = {"s1": D("1000.00")}
    result = reserve(ACCOUNT, pending, "s2", D("3000.01"), stressed=False)
    assert not result.passed
    assert result.reserved == pending


def test_a_key_already_pending_is_an_error() -> None:
    with pytest.raises(ValueError, match="already holds a pending reservation"):
        reserve(ACCOUNT, {"s1": D(100)}, "s1", D(100), stressed=False)


def test_a_reservation_above_a_warning_needs_confirmation() -> None:
    result = reserve(ACCOUNT, {}, "s1", D("500.00"), stressed=False, approval=Approval())
    assert result.check.failure is not None
    assert result.check.failure.kind is ErrorKind.RISK_WARNING_UNCONFIRMED
    assert result.reserved == {}
    confirmed = Approval(warning_level=WARNING, warning_confirmed=True)
    assert reserve(ACCOUNT, {}, "s1", D("500.00"), stressed=False, approval=confirmed).passed


def test_over_budget_outranks_an_unconfirmed_warning() -> None:
    result = reserve(ACCOUNT, {}, "s1", D("5000.00"), stressed=False, approval=Approval())
    assert result.check.failure is not None
    assert result.check.failure.kind is ErrorKind.RISK_BUDGET_EXCEEDED


# --- dry run -------------------------------------------------------------------------


def test_a_sufficient_dry_run_keeps_the_pass_and_records_the_change() -> None:
    result = check(BUDGET, D(450)).with_dry_run(verdict())
    assert result.passed
    assert result.assessment.dry_run_buying_power_change == D("-600.00")


def test_an_insufficient_dry_run_fails_with_the_broker_numbers() -> None:
    result = check(BUDGET, D(450)).with_dry_run(verdict(new_buying_power="-25.00"))
    failure = result.failure
    assert failure is not None
    assert failure.kind is ErrorKind.INSUFFICIENT_BUYING_POWER
    assert failure.message == (
        "the broker's dry run refuses the order: new buying power would be -25.00 (change -600.00)"
    )
    assert failure.details == {
        "new_buying_power": "-25.00",
        "change_in_buying_power": "-600.00",
        "current_buying_power": "15600.00",
    }
    assert isinstance(failure.error(), InsufficientBuyingPower)
    assert result.assessment.dry_run_buying_power_change == D("-600.00")


def test_a_broker_error_gives_the_broker_reason() -> None:
    result = check(BUDGET, D(450)).with_dry_run(verdict(errors=("margin check failed",)))
    assert result.failure is not None
    assert result.failure.message == "the broker's dry run refuses the order: margin check failed"
    assert result.failure.details["broker_errors"] == "margin check failed"


def test_a_budget_failure_stays_a_budget_failure() -> None:
    result = check(BUDGET, D(5000)).with_dry_run(verdict(new_buying_power="-1.00"))
    assert result.failure is not None
    assert result.failure.kind is ErrorKind.RISK_BUDGET_EXCEEDED
    assert result.assessment.dry_run_buying_power_change == D("-600.00")


def test_a_reservation_refused_by_the_dry_run_is_not_made() -> None:
    made = reserve(ACCOUNT, {"s0": D(100)}, "s1", D(450), stressed=False)
    assert "s1" in made.reserved
    refused = made.with_dry_run(verdict(new_buying_power="-1.00"))
    assert not refused.passed
    assert refused.reserved == {"s0": D(100)}


def test_verdict_from_the_broker_adapter_result() -> None:
    result = DryRunResult(
        buying_power_effect=BuyingPowerEffect(
            change_in_buying_power=D("-600.00"),
            current_buying_power=D("500.00"),
            new_buying_power=D("-100.00"),
            change_in_margin_requirement=D("600.00"),
            isolated_order_margin_requirement=D("600.00"),
            is_spread=True,
            impact=D("600.00"),
            effect="Debit",
        ),
        errors=(),
    )
    v = DryRunVerdict.of(result)
    assert v == DryRunVerdict(D("-100.00"), D("-600.00"), D("500.00"), ())
    assert v.sufficient is result.sufficient is False


def test_verdict_rejects_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="new_buying_power must be a finite"):
        DryRunVerdict(D("NaN"), D(0))
