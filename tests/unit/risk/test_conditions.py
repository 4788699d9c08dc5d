"""Market conditions: reading a stress verdict, and keeping the latest per underlying."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from libs.contracts.errors import SenexError
from libs.contracts.market import BandPosition, BollingerBands, MarketConditionChanged
from libs.contracts.registry import encode_event
from libs.runtime.clock import ManualClock
from services.risk.conditions import MarketConditions, stress_verdict, stressed_symbols
from services.risk.settings import RiskSettings
from services.risk.state import RiskState
from tests.integration.replay.scenario import Script
from tests.unit.strategy.shell import FakeShell

AT = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def condition(symbol: str, *, stressed: bool) -> bytes:
    event = MarketConditionChanged(
        occurred_at=AT,
        producer="market_data",
        correlation_id=Script("x").correlation,
        symbol=symbol,
        price=Decimal(580),
        bands=BollingerBands(lower=Decimal(585), middle=Decimal(590), upper=Decimal(595)),
        band_position=BandPosition.AT_OR_BELOW_LOWER if stressed else BandPosition.INSIDE,
        stressed=stressed,
    )
    return encode_event(event)


def test_a_condition_gives_its_symbols_verdict() -> None:
    assert stress_verdict(condition("SPY", stressed=True)) == ("SPY", True)
    assert stress_verdict(condition("QQQ", stressed=False)) == ("QQQ", False)


def test_another_event_gives_none_and_garbage_raises() -> None:
    s = Script("5WT00001")
    assert stress_verdict(encode_event(s.generated(s.correlation))) is None
    with pytest.raises(SenexError):
        stress_verdict(b"not json")


def test_only_the_stressed_symbols_are_listed_sorted() -> None:
    assert stressed_symbols({"SPY": True, "QQQ": False, "IWM": True}) == ("IWM", "SPY")
    assert stressed_symbols({}) == ()


def test_the_latest_verdict_per_underlying_is_kept_and_garbage_passed_over() -> None:
    state = RiskState()
    conditions = MarketConditions(FakeShell(state.apply, ManualClock(AT)), RiskSettings())
    conditions.on_condition(condition("SPY", stressed=True))
    conditions.on_condition(condition("QQQ", stressed=True))
    conditions.on_condition(b"{broken")
    assert conditions.stressed_underlyings() == ("QQQ", "SPY")
    conditions.on_condition(condition("SPY", stressed=False))
    assert conditions.stressed_underlyings() == ("QQQ",)
