"""The strategy service's shell: commands, reactions and timed work, wired to its parts.

State is the fold of the business stream (`services.strategy.state.StrategyState`:
suggestions per account, and the accounts: settings, balance, open positions), rebuilt
at start by a `Follower` and kept live by it. The service never applies an event it
publishes (docs/decisions/0002-state-is-the-stream-fold.md): ``publish`` returns once
the fold holds it, so a caller that gets the reply can act on it at once.

The work is done by collaborators built in `services.strategy.bootstrap`: market inputs,
generation, decisions on suggestions (approve, reject, expire), the daily automation and
the queries. Business time is the injected clock: expiry and the 10:00 automation poll
it every ``poll_seconds`` of real time, so a manual clock's jump is seen within that.
"""

from __future__ import annotations

import asyncio

from libs.contracts.commands import (
    ApproveSuggestion,
    GenerateSuggestion,
    GetDecisionSnapshot,
    GetSuggestion,
    GetSuggestions,
    RejectSuggestion,
)
from libs.contracts.risk import RiskCheckPassed
from libs.runtime.following import FollowingService
from libs.runtime.reactions import Reactions
from libs.runtime.runner import ServiceContext
from libs.runtime.tasks import cancel_and_wait, run_periodically
from services.strategy.accounts import AccountState
from services.strategy.bootstrap import StrategyDependencies, assemble
from services.strategy.state import SERVICE


class StrategyService(FollowingService):
    """Suggestions: generate, approve, reject, expire, and the daily automation."""

    name = SERVICE

    def __init__(self, dependencies: StrategyDependencies | None = None) -> None:
        dependencies = dependencies or StrategyDependencies()
        super().__init__(SERVICE, clock=dependencies.clock)
        self._poll_seconds = dependencies.poll_seconds
        self.parts = assemble(self, dependencies)
        self._reactions = Reactions({RiskCheckPassed: self.parts.automation.on_risk_check_passed})
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, ctx: ServiceContext) -> None:
        parts = self.parts
        await self.connect(ctx)
        await self.follow(parts.state.apply, self._reactions)
        await self.serve(
            {
                GenerateSuggestion.VERB: parts.generation.generate,
                GetSuggestion.VERB: parts.queries.get_suggestion,
                GetSuggestions.VERB: parts.queries.get_suggestions,
                ApproveSuggestion.VERB: parts.decisions.approve,
                RejectSuggestion.VERB: parts.decisions.reject,
                GetDecisionSnapshot.VERB: parts.inputs.decision_snapshot,
            }
        )
        self._tasks = [
            asyncio.create_task(
                run_periodically(
                    parts.decisions.expire_due, self._poll_seconds, what="expiry", log=self._log
                ),
                name="strategy-expiry",
            ),
            asyncio.create_task(
                run_periodically(
                    parts.automation.run, self._poll_seconds, what="automation", log=self._log
                ),
                name="strategy-auto",
            ),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        await self.disconnect()

    def account(self, account_id: str) -> AccountState:
        """What the service knows of ``account_id``."""
        return self.parts.state.account(account_id)
