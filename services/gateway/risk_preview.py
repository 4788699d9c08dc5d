"""``POST validate-trade-risk/``: may this suggestion be executed at this credit now?

Pure: the suggestion's view (strategy) and the account's budget (risk) in, a verdict
out. What it checks, in order:

1. the suggestion is still PENDING (not approved, rejected or expired);
2. its risk check (made by the risk service when it was generated) passed;
3. at the credit asked for (the mid credit when none), the trade's max risk
   (2 x W x 100 - credit x 100, DOMAIN.md 4) fits the risk that remains *now*: the
   current budget's tradeable capital x the tolerance the risk check applied to this
   trade (so a stressed underlying keeps its raised tolerance) - the risk used now
   (open positions + pending reservations).

The warning level and its confirmation are the risk check's: it is what execute
requires ``confirm_warning`` for. The thresholds belong to the risk service, which
re-checks at the order's credit when it reserves; a lower custom credit that reaches a
higher level is refused there (RISK_WARNING_UNCONFIRMED on the reservation). This is a
preview for the screen, not the decision: the risk service decides on approval.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

from libs.contracts.errors import ValidationFailed
from libs.contracts.risk import RiskBudgetView, WarningLevel
from libs.contracts.strategy import SuggestionStatus, SuggestionView
from libs.domain.trident import trident_risk
from services.gateway.models import TradeRiskValidation

_RATIO = Context(prec=28, rounding=ROUND_HALF_EVEN)


def _percent(ratio: Decimal) -> str:
    return f"{(ratio * 100).quantize(Decimal('0.1'))} %"


def preview(
    view: SuggestionView, budget: RiskBudgetView, custom_credit: Decimal | None
) -> TradeRiskValidation:
    """The verdict for executing ``view``'s suggestion at ``custom_credit`` (or mid)."""
    suggestion = view.suggestion
    credit = custom_credit if custom_credit is not None else suggestion.total_mid_credit
    figures = trident_risk(suggestion.width, credit)
    if figures.max_risk < 0:
        raise ValidationFailed(
            f"custom_credit: {credit} exceeds the trade's width (at most {2 * suggestion.width})",
            field="custom_credit",
        )
    max_risk = figures.max_risk
    assessment = view.assessment
    tolerance = assessment.tolerance if assessment is not None else budget.base_tolerance
    available = budget.tradeable_capital * tolerance
    used = budget.used_risk
    remaining = available - used
    utilisation = _RATIO.divide(used + max_risk, available) if available > 0 else None
    level = assessment.warning_level if assessment is not None else WarningLevel.NONE
    warning = None
    if level is not WarningLevel.NONE:
        shown = _percent(assessment.utilisation) if assessment and assessment.utilisation else "?"
        warning = (
            f"Risk utilisation after this trade reaches {shown} ({level.value}); "
            "confirm to proceed."
        )

    if view.status is not SuggestionStatus.PENDING:
        valid, message = False, f"the suggestion is {view.status.value}, not PENDING"
    elif view.risk_check_passed is None:
        valid, message = False, "the risk check of this suggestion is still pending"
    elif not view.risk_check_passed:
        valid, message = False, view.risk_check_message or "the risk check failed"
    elif available <= 0:
        valid, message = False, "no risk budget is available (buying power is not positive)"
    elif max_risk > remaining:
        valid = False
        message = f"max risk {max_risk} exceeds the remaining risk budget {remaining}"
    else:
        valid = True
        message = f"max risk {max_risk} fits the remaining risk budget {remaining}"
    return TradeRiskValidation(
        valid=valid,
        message=message,
        warning=warning,
        warning_level=level,
        requires_confirmation=level is not WarningLevel.NONE,
        suggestion_id=suggestion.suggestion_id,
        credit=credit,
        max_risk=max_risk,
        max_profit=figures.max_profit,
        available_risk=available,
        used_risk=used,
        remaining_risk=remaining,
        utilisation_after=utilisation,
    )
