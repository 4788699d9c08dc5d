"""The market-data service's composition root: what it is built from, and the building.

`MarketDataDependencies` is everything that may be chosen from outside (a test's
settings, how the broker is reached); `assemble` is the one place that opens the
credentials vault and the broker adapter and builds every part of the service (the
stream's link, the publisher, staleness, quotes, chains, conditions, balances), handing
each what it needs. The service calls it at start, once connected: the database URL,
the business clock and the metrics registry come from the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.broker.vault import CredentialsVault
from libs.broker.wiring import BrokerWiring
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from libs.runtime.envelopes import Envelopes
from libs.runtime.runner import ServiceContext
from services.market_data import SERVICE
from services.market_data.balances import AccountBalances
from services.market_data.broker_link import BrokerLink
from services.market_data.chains import Chains
from services.market_data.conditions import Conditions
from services.market_data.metrics import MarketDataMetrics
from services.market_data.publishing import Publisher
from services.market_data.quotes import Quotes
from services.market_data.settings import MarketDataSettings
from services.market_data.staleness import Staleness


@dataclass(frozen=True)
class MarketDataDependencies:
    """What the market-data service may be given; each default is production's."""

    settings: MarketDataSettings | None = None
    """The service's settings (None: the environment's, ``SENEX_MARKET_DATA_*``)."""
    broker: BrokerWiring = field(default_factory=BrokerWiring)
    """Broker settings and credentials (default: ``SENEX_BROKER_*`` and the vault)."""


@dataclass(frozen=True, slots=True)
class MarketDataParts:
    """Everything built at start from the dependencies, the clock and the bus."""

    settings: MarketDataSettings
    clock: Clock
    metrics: MarketDataMetrics
    broker: BrokerLink
    publisher: Publisher
    staleness: Staleness
    quotes: Quotes
    chains: Chains
    conditions: Conditions
    balances: AccountBalances


async def assemble(
    dependencies: MarketDataDependencies, ctx: ServiceContext, bus: Bus
) -> MarketDataParts:
    """Every part of the service, publishing on ``bus`` (no broker call is made yet)."""
    settings = dependencies.settings or MarketDataSettings()
    broker_settings = dependencies.broker.resolved_settings()
    clock = ctx.clock
    envelope = Envelopes(SERVICE, lambda: clock)
    metrics = MarketDataMetrics.register(ctx.metrics.registry)
    # The vault says which accounts are linked (the market-data account, the balances);
    # the adapter's credentials are the wiring's (by default the vault's, which in paper
    # mode also answer for the simulator's default customer).
    vault = await CredentialsVault.open(ctx.settings.database_url, broker_settings)
    adapter = await BrokerWiring(broker_settings, dependencies.broker.credentials).adapter(
        ctx.settings.database_url, vault=vault
    )
    broker = BrokerLink(settings, broker_settings, vault=vault, adapter=adapter, clock=clock)
    publisher = Publisher(
        bus,
        settings.quote_publish_interval_s,
        envelope=envelope,
        service_metrics=ctx.metrics,
        published=metrics.published,
    )
    staleness = Staleness(settings.stale_after_s, broker, publisher, metrics.stale, envelope)
    quotes = Quotes(
        tuple(settings.underlyings),
        clock=clock,
        broker=broker,
        staleness=staleness,
        publisher=publisher,
        received=metrics.received,
    )
    return MarketDataParts(
        settings=settings,
        clock=clock,
        metrics=metrics,
        broker=broker,
        publisher=publisher,
        staleness=staleness,
        quotes=quotes,
        chains=Chains(settings, clock=clock, broker=broker, quotes=quotes),
        conditions=Conditions(
            settings,
            clock=clock,
            broker=broker,
            quotes=quotes,
            staleness=staleness,
            publisher=publisher,
            envelope=envelope,
            fallback_rate=ctx.settings.risk_free_rate,
        ),
        balances=AccountBalances(
            settings.balances_interval_s,
            clock=clock,
            broker=broker,
            bus=bus,
            envelope=envelope,
        ),
    )
