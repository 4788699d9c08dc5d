"""validate-trade-risk: the suggestion's check plus the current budget at a credit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.contracts.errors import ValidationFailed
from libs.contracts.risk import WarningLevel
from libs.contracts.strategy import SuggestionStatus, SuggestionView
from services.gateway.risk_preview import preview
from tests.unit.gateway.builders import budget, view

D = Decimal


def test_at_mid_a_fitting_trade_is_valid() -> None:
    result = preview(view(), budget(), None)
    assert result.valid
    assert result.credit == D("5.00")
    # 2 x W x 100 - credit x 100 = 1000 - 500
    assert result.max_risk == D("500.00")
    assert result.max_profit == D("500.00")
    assert result.available_risk == D("4000.00")
    assert result.remaining_risk == D("4000.00")
    assert result.utilisation_after == D("0.125")
    assert result.warning is None
    assert not result.requires_confirmation


def test_a_lower_custom_credit_raises_the_max_risk() -> None:
    result = preview(view(), budget(), D("2.00"))
    assert result.credit == D("2.00")
    assert result.max_risk == D("800.00")
    assert result.valid


def test_a_trade_over_the_remaining_budget_is_not_valid() -> None:
    result = preview(view(), budget(used="3700"), None)
    assert not result.valid
    assert "exceeds the remaining risk budget 300" in result.message


def test_the_risk_checks_tolerance_applies_to_a_stressed_trade() -> None:
    # Stressed: 0.60 of 10,000 is available for this trade, not the base 0.40.
    result = preview(view(tolerance="0.60"), budget(used="3700"), None)
    assert result.available_risk == D("6000.00")
    assert result.valid


def test_no_budget_at_all_is_not_valid() -> None:
    result = preview(view(), budget(buying_power="0"), None)
    assert not result.valid
    assert result.utilisation_after is None


def test_a_warning_needs_confirmation() -> None:
    result = preview(view(warning=WarningLevel.WARNING), budget(), None)
    assert result.valid
    assert result.requires_confirmation
    assert result.warning_level is WarningLevel.WARNING
    assert result.warning is not None
    assert "12.5 %" in result.warning


@pytest.mark.parametrize(
    ("suggestion_view", "reason"),
    [
        (view(status=SuggestionStatus.APPROVED), "APPROVED, not PENDING"),
        (view(passed=None), "still pending"),
        (view(passed=False, message="max risk 500 exceeds the remaining 100"), "exceeds"),
    ],
)
def test_a_suggestion_that_cannot_execute_is_not_valid(
    suggestion_view: SuggestionView, reason: str
) -> None:
    result = preview(suggestion_view, budget(), None)
    assert not result.valid
    assert reason in result.message


def test_a_credit_above_the_width_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as raised:
        preview(view(), budget(), D("10.01"))
    assert raised.value.field == "custom_credit"
