"""Execution's own metrics: orders by status reached, broker retries, send latency.

Registered on the service's registry (`ServiceMetrics`), next to the metrics every
service exports; errors are counted there (``senex_errors_total``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from libs.contracts.errors import ErrorKind
from libs.contracts.execution import OrderStatus
from libs.runtime.metrics import ServiceMetrics

#: The service's name (its subjects, consumers, metrics label).
SERVICE = "execution"

#: From a decision to its broker request leaving: sub-millisecond up to a second.
SEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


class ExecutionMetrics:
    """The counters and histogram execution updates, and the send latencies measured."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        registry = metrics.registry
        self._service = metrics
        self._orders = Counter(
            "senex_orders_total",
            "Order lifecycle events published, by status reached.",
            ["service", "status"],
            registry=registry,
        )
        self._retries = Counter(
            "senex_broker_retries_total",
            "Broker order requests retried, by the error kind that caused the retry.",
            ["service", "kind"],
            registry=registry,
        )
        self._send = Histogram(
            "senex_order_send_seconds",
            "From the decision (RiskReserved / ExitOrderPlaced) to the broker request leaving.",
            ["service"],
            buckets=SEND_BUCKETS,
            registry=registry,
        )
        #: Seconds from a decision (RiskReserved / ExitOrderPlaced) to its request leaving.
        self.send_latency: list[float] = []

    def order_status(self, status: OrderStatus) -> None:
        """One lifecycle event published; the order is now in ``status``."""
        self._orders.labels(SERVICE, status.value).inc()

    def retry(self, kind: ErrorKind) -> None:
        """One broker request retried after an error of ``kind``."""
        self._retries.labels(SERVICE, kind.value).inc()

    def sent(self, seconds: float) -> None:
        """A first request left ``seconds`` after its decision."""
        self._send.labels(SERVICE).observe(seconds)
        self.send_latency.append(seconds)

    def error(self, kind: ErrorKind) -> None:
        """Count one error of ``kind`` (``senex_errors_total``)."""
        self._service.error(kind.value)
