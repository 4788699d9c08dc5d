"""The risk service's composition root: what it is built from, and the building.

`RiskDependencies` is everything that may be chosen from outside (a test's clock, the
risk settings, how the broker is reached); `assemble` is the one place that builds the
state and the collaborators and hands each what it needs. The service calls it with
itself as the shell (bus, clock, envelopes, publish); the broker adapter is built at
start from ``broker`` (`BrokerWiring.adapter`), once the database URL is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.broker.wiring import BrokerWiring
from libs.runtime.clock import Clock
from libs.runtime.following import ServiceShell
from services.risk.checks import SuggestionChecks
from services.risk.conditions import MarketConditions
from services.risk.dry_run import BrokerDryRun
from services.risk.queries import RiskQueries
from services.risk.releases import Releases
from services.risk.reservations import Reservations
from services.risk.settings import RiskSettings
from services.risk.state import RiskState


@dataclass(frozen=True)
class RiskDependencies:
    """What the risk service may be given; each default is production's."""

    clock: Clock | None = None
    """The business clock (None: the runner's)."""
    settings: RiskSettings | None = None
    """The risk settings (None: the environment's, ``SENEX_RISK_*``)."""
    broker: BrokerWiring = field(default_factory=BrokerWiring)
    """Broker settings and credentials (default: ``SENEX_BROKER_*`` and the vault)."""


@dataclass(frozen=True)
class RiskParts:
    """The risk service's state and collaborators, built by `assemble`."""

    state: RiskState
    conditions: MarketConditions
    broker: BrokerDryRun
    checks: SuggestionChecks
    reservations: Reservations
    releases: Releases
    queries: RiskQueries


def assemble(shell: ServiceShell, dependencies: RiskDependencies) -> RiskParts:
    """The state and every collaborator, wired to ``shell`` and to each other."""
    settings = dependencies.settings or RiskSettings()
    state = RiskState()
    conditions = MarketConditions(shell, settings)
    broker = BrokerDryRun(settings, dependencies.broker)
    return RiskParts(
        state=state,
        conditions=conditions,
        broker=broker,
        checks=SuggestionChecks(shell, state),
        reservations=Reservations(shell, state, conditions, broker),
        releases=Releases(shell, state),
        queries=RiskQueries(shell, state, conditions),
    )
