"""Prometheus metrics every service exports, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Handler latency buckets: sub-millisecond folds up to multi-second broker calls.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    """The metrics common to all services (names are what the dashboards query).

    Each service gets its own registry so tests can run several in one process.
    """

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        self.events_handled = Counter(
            "senex_events_handled_total",
            "Events handled by the service, by event type and outcome.",
            ["service", "type", "outcome"],
            registry=self.registry,
        )
        self.handler_latency = Histogram(
            "senex_handler_latency_seconds",
            "Time spent handling one event or command, by type.",
            ["service", "type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "senex_consumer_lag_messages",
            "Messages in the stream not yet delivered to the consumer.",
            ["service", "consumer"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "senex_dead_letters_total",
            "Messages sent to the dead-letter subject after max deliveries.",
            ["service", "consumer"],
            registry=self.registry,
        )
        self.errors = Counter(
            "senex_errors_total",
            "Errors by kind (the error kinds of DOMAIN.md section 7, or INTERNAL).",
            ["service", "kind"],
            registry=self.registry,
        )
        self.up = Gauge(
            "senex_service_up",
            "1 while the service is running and healthy, 0 otherwise.",
            ["service"],
            registry=self.registry,
        )

    def handled(self, event_type: str, seconds: float, outcome: str = "ok") -> None:
        """Record one handled event and how long it took."""
        self.events_handled.labels(self.service, event_type, outcome).inc()
        self.handler_latency.labels(self.service, event_type).observe(seconds)

    def error(self, kind: str) -> None:
        """Count one error of ``kind``."""
        self.errors.labels(self.service, kind).inc()
