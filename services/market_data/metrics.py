"""The market-data service's own Prometheus series, on the service's registry.

Registered once per start (a registry refuses a name twice), then handed to the part
that moves each one: quotes in to `Quotes`, QuoteReceived out to `Publisher`, stale
symbols to `Staleness`, stream subscriptions to the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.market_data import SERVICE


@dataclass(frozen=True, slots=True)
class MarketDataMetrics:
    """The four series, already labelled with the service's name."""

    received: Counter
    published: Counter
    stale: Gauge
    subscriptions: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> MarketDataMetrics:
        """Create the series on ``registry``."""
        return cls(
            received=Counter(
                "senex_quotes_received_total",
                "Quotes received from the market-data stream.",
                ["service"],
                registry=registry,
            ).labels(SERVICE),
            published=Counter(
                "senex_quotes_published_total",
                "QuoteReceived events published (after the per-symbol throttle).",
                ["service"],
                registry=registry,
            ).labels(SERVICE),
            stale=Gauge(
                "senex_market_data_stale_symbols",
                "Watched symbols currently without a fresh quote.",
                ["service"],
                registry=registry,
            ).labels(SERVICE),
            subscriptions=Gauge(
                "senex_market_data_subscriptions",
                "Symbols subscribed on the market-data stream.",
                ["service"],
                registry=registry,
            ).labels(SERVICE),
        )
