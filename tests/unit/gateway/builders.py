"""Contract values for the gateway's pure tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from libs.contracts.market import Quote
from libs.contracts.risk import RiskAssessment, RiskBudgetView, RiskTemplate, WarningLevel
from libs.contracts.strategy import (
    SpreadKind,
    SpreadLeg,
    SuggestedSpread,
    Suggestion,
    SuggestionStatus,
    SuggestionView,
)
from libs.contracts.symbols import OccSymbol, OptionType

D = Decimal
NOW = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)
EXPIRATION = date(2025, 7, 18)


def _leg(option_type: OptionType, strike: int, bid: str, ask: str) -> SpreadLeg:
    symbol = OccSymbol.build("SPY", EXPIRATION, option_type, D(strike))
    return SpreadLeg(symbol=symbol, bid=D(bid), ask=D(ask), mid=(D(bid) + D(ask)) / 2)


def _spread(kind: SpreadKind, short: SpreadLeg, long: SpreadLeg) -> SuggestedSpread:
    return SuggestedSpread(
        kind=kind,
        short_leg=short,
        long_leg=long,
        natural_credit=short.bid - long.ask,
        mid_credit=short.mid - long.mid,
    )


def suggestion() -> Suggestion:
    """A 2:2:1:1 SPY trident, W = 5, total mid credit 1.90 + 1.90 + 1.20 = 5.00."""
    put_short = _leg(OptionType.PUT, 590, "7.00", "7.20")
    put_long = _leg(OptionType.PUT, 585, "5.10", "5.30")
    call_short = _leg(OptionType.CALL, 590, "8.00", "8.20")
    call_long = _leg(OptionType.CALL, 595, "6.80", "7.00")
    spreads = (
        _spread(SpreadKind.PUT_SPREAD_1, put_short, put_long),
        _spread(SpreadKind.PUT_SPREAD_2, put_short, put_long),
        _spread(SpreadKind.CALL_SPREAD, call_short, call_long),
    )
    total_mid = sum((s.mid_credit for s in spreads), D(0))
    return Suggestion(
        suggestion_id=uuid4(),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
        underlying="SPY",
        underlying_price=D(590),
        expiration=EXPIRATION,
        dte=45,
        base_strike=D(590),
        short_strike=D(590),
        width=D(5),
        tradeable_capital=D(30000),
        spreads=spreads,
        near_bollinger_band=False,
        total_natural_credit=sum((s.natural_credit for s in spreads), D(0)),
        total_mid_credit=total_mid,
        max_profit=total_mid * 100,
        max_risk=1000 - total_mid * 100,
        required_capital=D(1000),
        quotes=(Quote(symbol="SPY", bid=D("589.99"), ask=D("590.01"), quoted_at=NOW),),
    )


def assessment(
    *, warning: WarningLevel = WarningLevel.NONE, tolerance: str = "0.40"
) -> RiskAssessment:
    return RiskAssessment(
        template=RiskTemplate.CONSERVATIVE,
        base_tolerance=D("0.40"),
        stressed=tolerance != "0.40",
        tolerance=D(tolerance),
        buying_power=D(10000),
        tradeable_capital=D(10000),
        available_risk=D(10000) * D(tolerance),
        used_risk=D(0),
        remaining_risk=D(10000) * D(tolerance),
        trade_max_risk=D(500),
        utilisation=D("0.125"),
        warning_level=warning,
    )


def view(
    *,
    status: SuggestionStatus = SuggestionStatus.PENDING,
    passed: bool | None = True,
    message: str | None = None,
    warning: WarningLevel = WarningLevel.NONE,
    tolerance: str = "0.40",
) -> SuggestionView:
    return SuggestionView(
        suggestion=suggestion(),
        status=status,
        risk_check_passed=passed,
        risk_check_message=message,
        assessment=assessment(warning=warning, tolerance=tolerance) if passed else None,
    )


def budget(*, buying_power: str = "10000", used: str = "0") -> RiskBudgetView:
    bp = D(buying_power)
    available = bp * D("0.40")
    return RiskBudgetView(
        template=RiskTemplate.CONSERVATIVE,
        base_tolerance=D("0.40"),
        buying_power=bp,
        tradeable_capital=bp,
        available_risk=available,
        open_positions_max_risk=D(used),
        reserved_risk=D(0),
        used_risk=D(used),
        remaining_risk=available - D(used),
        utilisation=D(used) / available if available > 0 else None,
        open_positions=0,
        as_of=NOW,
    )
