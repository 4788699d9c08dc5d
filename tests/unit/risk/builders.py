"""Risk-state builders for the risk collaborators' tests (the replay scenario's events)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from libs.contracts.account import BalanceUpdated
from services.risk.state import RiskState
from tests.integration.replay.scenario import Script

ACCOUNT = "5WT00001"


def balance(s: Script, buying_power: str) -> BalanceUpdated:
    env = s.env("market_data")
    return BalanceUpdated(
        **env,
        derivative_buying_power=Decimal(buying_power),
        net_liquidating_value=Decimal(buying_power),
        cash_balance=Decimal(buying_power),
        broker_updated_at=env["occurred_at"] + timedelta(seconds=0),
    )


def funded(buying_power: str = "20000") -> tuple[Script, RiskState]:
    """A script and a state whose account has ``buying_power`` (conservative template)."""
    s, state = Script(ACCOUNT), RiskState()
    state.apply(balance(s, buying_power))
    return s, state
