"""The risk service's shell: reactions and the risk-budget query, wired to its parts.

State is `services.risk.accounts.RiskBook` (template, balance, `RiskUsage`, suggestions,
opening orders per account) in `services.risk.state.RiskState`, rebuilt at start by a
`Follower` and kept live by it. The service never applies an event it publishes
(docs/decisions/0002-state-is-the-stream-fold.md): ``publish`` returns once the fold
holds it. The verdicts come from the pure core (`services.risk.core`); the collaborators
built in `services.risk.bootstrap` gather their inputs (market data's stress, the
broker's dry run) and publish what they decide.

Reactions (live events only; the follower never re-enacts history):

- ``SuggestionGenerated`` -> ``RiskCheckPassed`` / ``RiskCheckFailed`` at the mid credit,
  stressed as the suggestion says (`services.risk.checks`).
- ``SuggestionApproved`` -> under the account's lock: re-check at the order's limit
  credit (stressed as market data says now), the warning gate, the broker's dry run,
  then ``RiskReserved`` / ``RiskReservationFailed``, folded before the lock is released
  (`services.risk.reservations`).
- An opening order's end or ``PositionOpened`` -> ``RiskReleased``
  (`services.risk.releases`).

Every reaction first looks at the state (already checked? already decided? still
pending?), so a redelivered event publishes nothing twice.
"""

from __future__ import annotations

from libs.contracts.commands import GetRiskBudget
from libs.contracts.strategy import SuggestionApproved, SuggestionGenerated
from libs.runtime.following import FollowingService
from libs.runtime.reactions import Reactions
from libs.runtime.runner import ServiceContext
from services.risk.accounts import RiskAccount
from services.risk.bootstrap import RiskDependencies, assemble
from services.risk.metrics import RiskBudgetCollector
from services.risk.releases import RELEASING
from services.risk.state import SERVICE


class RiskService(FollowingService):
    """Risk budget, pre-trade checks, reservations and releases."""

    name = SERVICE

    def __init__(self, dependencies: RiskDependencies | None = None) -> None:
        dependencies = dependencies or RiskDependencies()
        super().__init__(SERVICE, clock=dependencies.clock)
        self.parts = assemble(self, dependencies)
        parts = self.parts
        self._reactions = Reactions(
            {
                SuggestionGenerated: parts.checks.check_suggestion,
                SuggestionApproved: parts.reservations.decide_approval,
                **{event_type: parts.releases.release_if_due for event_type in RELEASING},
            }
        )

    async def start(self, ctx: ServiceContext) -> None:
        parts = self.parts
        await self.connect(ctx)
        ctx.metrics.registry.register(RiskBudgetCollector(SERVICE, lambda: parts.state.book))
        await parts.broker.open(ctx.settings.database_url)
        await parts.conditions.follow()
        await self.follow(parts.state.apply, self._reactions)
        await self.serve({GetRiskBudget.VERB: parts.queries.get_risk_budget})

    async def stop(self) -> None:
        await self.stop_following()  # no reaction may reach the broker once it is closed
        await self.parts.broker.aclose()
        await self.disconnect()

    def account(self, account_id: str) -> RiskAccount:
        """What the service knows of ``account_id``."""
        return self.parts.state.account(account_id)
