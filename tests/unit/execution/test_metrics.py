"""Execution's metrics on the service's registry."""

from __future__ import annotations

from libs.contracts.errors import ErrorKind
from libs.contracts.execution import OrderStatus
from libs.runtime.metrics import ServiceMetrics
from services.execution.metrics import ExecutionMetrics


def test_orders_retries_send_latency_and_errors_are_counted_by_label() -> None:
    service = ServiceMetrics("execution")
    metrics = ExecutionMetrics(service)
    metrics.order_status(OrderStatus.FILLED)
    metrics.order_status(OrderStatus.FILLED)
    metrics.retry(ErrorKind.RATE_LIMITED)
    metrics.sent(0.003)
    metrics.error(ErrorKind.NOT_FOUND)
    registry = service.registry
    label = {"service": "execution"}
    assert registry.get_sample_value("senex_orders_total", {**label, "status": "FILLED"}) == 2
    assert registry.get_sample_value("senex_orders_total", {**label, "status": "WORKING"}) is None
    retries = registry.get_sample_value(
        "senex_broker_retries_total", {**label, "kind": "RATE_LIMITED"}
    )
    assert retries == 1
    assert registry.get_sample_value("senex_order_send_seconds_count", label) == 1
    assert (
        registry.get_sample_value("senex_order_send_seconds_bucket", {**label, "le": "0.005"}) == 1
    )
    assert (
        registry.get_sample_value("senex_order_send_seconds_bucket", {**label, "le": "0.0025"}) == 0
    )
    assert metrics.send_latency == [0.003]
    assert registry.get_sample_value("senex_errors_total", {**label, "kind": "NOT_FOUND"}) == 1
