"""Whether a decision can be made for an account at all (`ready_account`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.contracts.account import AccountSettings, AccountSettingsChanged, BalanceUpdated
from libs.contracts.base import Underlying
from libs.contracts.commands import GenerateSuggestion, GetDecisionSnapshot
from libs.contracts.errors import ServiceUnavailable, ValidationFailed
from libs.contracts.risk import RiskTemplate
from services.strategy.market import ready_account
from services.strategy.state import StrategyState
from tests.integration.replay.scenario import Script

ACCOUNT = "5WT00001"


def _state(*, underlyings: tuple[Underlying, ...] | None = None, balance: bool) -> StrategyState:
    s, state = Script(ACCOUNT), StrategyState()
    if underlyings is not None:
        settings = AccountSettings(risk_template=RiskTemplate.MODERATE, underlyings=underlyings)
        state.apply(AccountSettingsChanged(**s.env("gateway"), user_id="alice", settings=settings))
    if balance:
        env = s.env("market_data")
        state.apply(
            BalanceUpdated(
                **env,
                derivative_buying_power=Decimal(20000),
                net_liquidating_value=Decimal(20000),
                cash_balance=Decimal(20000),
                broker_updated_at=env["occurred_at"],
            )
        )
    return state


def test_an_enabled_underlying_with_a_balance_is_ready() -> None:
    state = _state(balance=True)
    command = GenerateSuggestion(account_id=ACCOUNT, underlying=Underlying.SPY)
    account = state.account(ACCOUNT)
    assert ready_account(account, command) is account


def test_an_underlying_not_enabled_is_a_validation_error() -> None:
    state = _state(underlyings=(Underlying.QQQ,), balance=True)
    command = GetDecisionSnapshot(account_id=ACCOUNT, underlying=Underlying.SPY)
    with pytest.raises(ValidationFailed) as raised:
        ready_account(state.account(ACCOUNT), command)
    assert raised.value.field == "underlying"
    assert "(enabled: QQQ)" in raised.value.message


def test_no_underlying_enabled_says_none() -> None:
    state = _state(underlyings=(), balance=True)
    command = GenerateSuggestion(account_id=ACCOUNT, underlying=Underlying.QQQ)
    with pytest.raises(ValidationFailed, match=r"\(enabled: none\)"):
        ready_account(state.account(ACCOUNT), command)


def test_without_a_balance_the_service_is_unavailable() -> None:
    state = _state(balance=False)
    command = GenerateSuggestion(account_id=ACCOUNT, underlying=Underlying.QQQ)
    with pytest.raises(ServiceUnavailable) as raised:
        ready_account(state.account(ACCOUNT), command)
    assert raised.value.details == {"account_id": ACCOUNT}
