"""The monitor's Prometheus series: decision counters and the portfolio gauges.

The portfolio gauges are read from the monitor's state at scrape time (for the
dashboards): a collector rather than gauges set on every fold, since the figures are
sums over the open positions, so computing them when Prometheus asks costs nothing
between scrapes and can never drift from the state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from libs.contracts.execution import OrderPurpose
from libs.contracts.positions import AttentionReason, CloseReason
from services.position_monitor import SERVICE
from services.position_monitor.state import MonitorState

OPEN_POSITIONS = "senex_open_positions"
NEEDS_ATTENTION = "senex_positions_needing_attention"
UNREALIZED_PNL = "senex_unrealized_pnl_dollars"
REALIZED_PNL = "senex_realized_pnl_dollars"


class PortfolioCollector(Collector):
    """Open positions, those needing attention, and P&L, summed over every account."""

    def __init__(self, service: str, state: Callable[[], MonitorState]) -> None:
        self._service = service
        self._state = state

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        labels = ["service"]
        return (
            GaugeMetricFamily(OPEN_POSITIONS, "Positions open now.", labels=labels),
            GaugeMetricFamily(
                NEEDS_ATTENTION, "Open positions flagged as needing attention.", labels=labels
            ),
            GaugeMetricFamily(
                UNREALIZED_PNL,
                "Unrealised P&L of the open positions at their latest valuation (USD).",
                labels=labels,
            ),
            GaugeMetricFamily(
                REALIZED_PNL,
                "Realised P&L of every position the monitor knows, open or closed (USD).",
                labels=labels,
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples (so registering does not read the state)."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The figures now."""
        state = self._state()
        opened = [position for _, position in state.open_positions()]
        realized = sum(
            (p.realized_pnl for book in state.books.values() for p in book.positions.values()),
            Decimal(0),
        )
        unrealized = sum((p.unrealized_pnl or Decimal(0) for p in opened), Decimal(0))
        values = (
            len(opened),
            sum(1 for p in opened if p.needs_attention),
            float(unrealized),
            float(realized),
        )
        for family, value in zip(self._families(), values, strict=True):
            family.add_metric([self._service], value)
            yield family


@dataclass(frozen=True)
class MonitorCounters:
    """What the monitor decided: exits by purpose, spreads closed, sync findings flagged."""

    exits: Counter
    closed: Counter
    findings: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> MonitorCounters:
        """The counters, registered on ``registry``."""
        return cls(
            exits=Counter(
                "senex_monitor_exits_total",
                "Exit orders the monitor decided, by purpose.",
                ["service", "purpose"],
                registry=registry,
            ),
            closed=Counter(
                "senex_monitor_spreads_closed_total",
                "Spreads closed, by reason.",
                ["service", "reason"],
                registry=registry,
            ),
            findings=Counter(
                "senex_monitor_sync_findings_total",
                "Broker-sync findings flagged, by reason.",
                ["service", "reason"],
                registry=registry,
            ),
        )

    def exit_decided(self, purpose: OrderPurpose) -> None:
        """One exit order decided (published)."""
        self.exits.labels(SERVICE, purpose.value).inc()

    def spread_closed(self, reason: CloseReason) -> None:
        """One spread closed by a fill."""
        self.closed.labels(SERVICE, reason.value).inc()

    def finding_flagged(self, reason: AttentionReason) -> None:
        """One broker-sync finding flagged."""
        self.findings.labels(SERVICE, reason.value).inc()
