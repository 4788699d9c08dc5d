"""Market inputs of a decision: market data's condition and chain, and the ready account.

`MarketInputs` asks market data for both concurrently and builds the snapshot a
generation decides from (`services.strategy.inputs.decision_snapshot`); `ready_account`
is the pure check that the account can be decided for at all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from libs.contracts.commands import (
    ChainSnapshotReply,
    DecisionSnapshotReply,
    GenerateSuggestion,
    GetChainSnapshot,
    GetDecisionSnapshot,
    GetMarketCondition,
    MarketConditionReply,
)
from libs.contracts.errors import ServiceUnavailable, ValidationFailed
from libs.runtime.following import ServiceShell
from services.strategy.accounts import AccountState
from services.strategy.inputs import decision_snapshot
from services.strategy.state import StrategyState

#: The commands a decision is made for.
DecisionCommand = GenerateSuggestion | GetDecisionSnapshot


@dataclass(frozen=True)
class MarketDataTimeouts:
    """Seconds to wait for market data's answers (the chain waits for fresh quotes)."""

    condition: float = 3.0
    chain: float = 6.0
    chain_wait: float = 2.0


@dataclass(frozen=True)
class Market:
    """Market data's answers for one decision."""

    condition: MarketConditionReply
    chain: ChainSnapshotReply


def ready_account(account: AccountState, command: DecisionCommand) -> AccountState:
    """``account`` when a decision can be made for it: the underlying is enabled
    (else VALIDATION_ERROR) and a balance is known (else SERVICE_UNAVAILABLE)."""
    if command.underlying not in account.settings.underlyings:
        enabled = ", ".join(u.value for u in account.settings.underlyings) or "none"
        raise ValidationFailed(
            f"{command.underlying.value} is not enabled for account {command.account_id} "
            f"(enabled: {enabled})",
            field="underlying",
        )
    if account.balance is None:
        raise ServiceUnavailable(
            f"no balance known for account {command.account_id} yet: market data "
            "publishes balances every 30 s; try again shortly",
            details={"account_id": command.account_id},
        )
    return account


class MarketInputs:
    """What a decision is made from: the account, market data's condition and chain."""

    def __init__(
        self, shell: ServiceShell, state: StrategyState, timeouts: MarketDataTimeouts
    ) -> None:
        self._shell = shell
        self._state = state
        self._timeouts = timeouts

    async def _market(self, command: DecisionCommand) -> Market:
        """Market condition and chain, asked of market data concurrently."""
        base = {
            "account_id": command.account_id,
            "underlying": command.underlying,
            "correlation_id": command.correlation_id,
            "requested_by": command.requested_by,
        }
        bus = self._shell.bus
        condition, chain = await asyncio.gather(
            bus.request(
                GetMarketCondition(**base),
                MarketConditionReply,
                timeout=self._timeouts.condition,
            ),
            bus.request(
                GetChainSnapshot(**base, wait_seconds=self._timeouts.chain_wait),
                ChainSnapshotReply,
                timeout=self._timeouts.chain,
            ),
        )
        return Market(condition, chain)

    async def snapshot(self, command: DecisionCommand) -> tuple[dict[str, Any], Market]:
        """The snapshot a decision is made from now, and market data's answers."""
        account = ready_account(self._state.account(command.account_id), command)
        market = await self._market(command)
        now = self._shell.clock.now()
        return decision_snapshot(now, market.condition, market.chain, account), market

    async def decision_snapshot(self, command: GetDecisionSnapshot) -> DecisionSnapshotReply:
        """The exact snapshot a generation would decide from now."""
        snapshot, _ = await self.snapshot(command)
        return DecisionSnapshotReply(snapshot=snapshot)
