"""The strategy service's composition root: what it is built from, and the building.

`StrategyDependencies` is everything that may be chosen from outside (a test's clock,
faster polling, market data's timeouts); `assemble` is the one place that builds the
state and the collaborators and hands each what it needs. The service calls it with
itself as the shell (bus, clock, envelopes, publish, partitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.runtime.clock import Clock
from libs.runtime.following import ServiceShell
from services.strategy.automation import Automation
from services.strategy.decisions import DecidingLocks, Decisions
from services.strategy.generation import Generation
from services.strategy.market import MarketDataTimeouts, MarketInputs
from services.strategy.queries import SuggestionQueries
from services.strategy.state import StrategyState


@dataclass(frozen=True)
class StrategyDependencies:
    """What the strategy service may be given; each default is production's."""

    clock: Clock | None = None
    """The business clock (None: the runner's)."""
    poll_seconds: float = 0.5
    """Real seconds between passes of the expiry and of the automation."""
    timeouts: MarketDataTimeouts = field(default_factory=MarketDataTimeouts)
    """How long to wait for market data's answers."""


@dataclass(frozen=True)
class StrategyParts:
    """The strategy service's state and collaborators, built by `assemble`."""

    state: StrategyState
    inputs: MarketInputs
    generation: Generation
    decisions: Decisions
    automation: Automation
    queries: SuggestionQueries


def assemble(shell: ServiceShell, dependencies: StrategyDependencies) -> StrategyParts:
    """The state and every collaborator, wired to ``shell`` and to each other."""
    state = StrategyState()
    locks = DecidingLocks()
    inputs = MarketInputs(shell, state, dependencies.timeouts)
    generation = Generation(shell, state, inputs)
    return StrategyParts(
        state=state,
        inputs=inputs,
        generation=generation,
        decisions=Decisions(shell, state, locks),
        automation=Automation(shell, state, generation, locks),
        queries=SuggestionQueries(state),
    )
