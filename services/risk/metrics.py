"""Risk-budget gauges per account, read from the service's book at scrape time.

A collector rather than gauges set on every fold: utilisation depends on the balance,
the template and the usage together, and computing it when Prometheus asks keeps it
equal to what ``GetRiskBudget`` would answer (unstressed, without a new trade).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.risk.accounts import RiskBook
from services.risk.core import Budget

UTILISATION = "senex_risk_utilisation_ratio"
USED = "senex_risk_used_dollars"
AVAILABLE = "senex_risk_available_dollars"


class RiskBudgetCollector(Collector):
    """Used risk, available risk and their ratio for every account with a balance."""

    def __init__(self, service: str, book: Callable[[], RiskBook]) -> None:
        self._service = service
        self._book = book

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        labels = ["service", "account"]
        return (
            GaugeMetricFamily(
                UTILISATION,
                "Used risk (open positions + reservations) / available risk (1 = 100 %).",
                labels=labels,
            ),
            GaugeMetricFamily(
                USED, "Open positions' max risk plus pending reservations (USD).", labels=labels
            ),
            GaugeMetricFamily(
                AVAILABLE, "Risk the template allows, unstressed (USD).", labels=labels
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples (so registering does not read the book)."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The figures now; accounts without a known balance are left out."""
        ratio, used, available = self._families()
        for account_id, account in sorted(self._book().accounts.items()):
            risk = account.risk()
            if risk is None:
                continue
            budget = Budget(risk, stressed=False, reserved_risk=account.usage.reserved_risk)
            labels = [self._service, account_id]
            used.add_metric(labels, float(budget.used))
            available.add_metric(labels, float(budget.available))
            utilisation = budget.utilisation()
            if utilisation is not None:
                ratio.add_metric(labels, float(utilisation))
        yield from (ratio, used, available)
