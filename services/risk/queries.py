"""The risk-budget query: every figure of the account's budget now."""

from __future__ import annotations

from datetime import datetime

from libs.contracts.commands import GetRiskBudget, RiskBudgetReply
from libs.contracts.risk import RiskBudgetView
from libs.runtime.following import ServiceShell
from services.risk.accounts import RiskAccount
from services.risk.conditions import MarketConditions
from services.risk.core import budget_view
from services.risk.state import NoBalance, RiskState


def budget_of(
    account: RiskAccount, *, as_of: datetime, stressed: tuple[str, ...]
) -> RiskBudgetView:
    """The account's budget view (SERVICE_UNAVAILABLE while no balance is known)."""
    risk = account.risk()
    if risk is None:
        raise NoBalance(account.account_id)
    return budget_view(
        risk,
        reserved_risk=account.usage.reserved_risk,
        open_positions=account.usage.open_positions,
        as_of=as_of,
        stressed_underlyings=stressed,
    )


class RiskQueries:
    """The ``get_risk_budget`` command."""

    def __init__(self, shell: ServiceShell, state: RiskState, conditions: MarketConditions) -> None:
        self._shell = shell
        self._state = state
        self._conditions = conditions

    async def get_risk_budget(self, command: GetRiskBudget) -> RiskBudgetReply:
        """The account's budget now: every figure, the warning level, stressed underlyings."""
        account = self._state.account(command.account_id)
        return RiskBudgetReply(
            budget=budget_of(
                account,
                as_of=self._shell.clock.now(),
                stressed=self._conditions.stressed_underlyings(),
            )
        )
