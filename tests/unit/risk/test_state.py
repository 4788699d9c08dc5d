"""The risk service's state: the fold, and one lock per account."""

from __future__ import annotations

from decimal import Decimal

from libs.contracts.account import BalanceUpdated
from libs.contracts.errors import ErrorKind
from services.risk.state import NoBalance, RiskState
from tests.integration.replay.scenario import Script

ACCOUNT = "5WT00001"


def test_each_account_has_its_own_lock_for_good() -> None:
    state = RiskState()
    lock = state.lock(ACCOUNT)
    assert state.lock(ACCOUNT) is lock
    assert state.lock("5WT00002") is not lock


def test_the_state_is_what_was_folded() -> None:
    s, state = Script(ACCOUNT), RiskState()
    assert state.account(ACCOUNT).buying_power is None
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
    assert state.account(ACCOUNT).buying_power == Decimal(20000)
    assert state.book.get(ACCOUNT) == state.account(ACCOUNT)


def test_no_balance_asks_to_retry_rather_than_claiming_no_funds() -> None:
    error = NoBalance(ACCOUNT)
    assert error.kind is ErrorKind.SERVICE_UNAVAILABLE
    assert error.details == {"account_id": ACCOUNT}
