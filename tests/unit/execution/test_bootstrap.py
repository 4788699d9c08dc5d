"""The composition root builds execution's parts from what the caller chose."""

from __future__ import annotations

import dataclasses

import pytest

from libs.broker.adapter import StaticCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.wiring import BrokerWiring
from libs.contracts.commands import (
    CancelOrder,
    GetOrder,
    GetOrders,
    PlaceExitOrder,
    ReplaceOrderPrice,
)
from libs.contracts.envelope import Event
from libs.contracts.positions import ExitOrderPlaced
from libs.contracts.risk import RiskReserved
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock, ManualClock
from libs.runtime.envelopes import Envelopes
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.settings import Settings, TradingMode
from services.execution.bootstrap import ExecutionDependencies, assemble
from services.execution.service import ExecutionService
from services.execution.settings import ExecutionSettings
from tests.unit.execution.builders import AT

CLOCK = ManualClock(AT)


class Shell:
    """The service shell as the parts see it: a clock, the accounts owned, publishing."""

    name = "execution"

    def __init__(self) -> None:
        self.envelope = Envelopes(self.name, lambda: self.clock)
        self.published: list[Event] = []

    @property
    def clock(self) -> Clock:
        return CLOCK

    @property
    def bus(self) -> Bus:
        raise AssertionError("assembling needs no bus")

    def owns(self, account_id: str) -> bool:
        return True

    async def publish(self, *events: Event) -> None:
        self.published.extend(events)


def _context() -> ServiceContext:
    return ServiceContext(
        name="execution",
        settings=Settings(
            nats_url="nats://127.0.0.1:1", database_url="postgresql://x@127.0.0.1:1/x"
        ),
        clock=CLOCK,
        metrics=ServiceMetrics("execution"),
        request_stop=lambda: None,
    )


def _deps(settings: ExecutionSettings | None = None) -> ExecutionDependencies:
    broker = BrokerSettings(mode=TradingMode.PAPER, simulator_url="http://127.0.0.1:1")
    return ExecutionDependencies(
        clock=CLOCK, settings=settings, broker=BrokerWiring(broker, StaticCredentials({}))
    )


def test_dependencies_default_to_the_environment_and_are_frozen() -> None:
    deps = ExecutionDependencies()
    assert deps.clock is None
    assert deps.settings is None
    assert deps.broker == BrokerWiring()
    with pytest.raises(dataclasses.FrozenInstanceError):
        deps.clock = CLOCK  # type: ignore[misc]


async def test_the_parts_react_to_reservations_and_exits_and_answer_every_command() -> None:
    settings = ExecutionSettings(reconcile_interval_s=2.0)
    parts = await assemble(_deps(settings), _context(), Shell())
    try:
        assert parts.settings is settings
        assert parts.reactions.event_types == {RiskReserved, ExitOrderPlaced}
        assert set(parts.commands.handlers()) == {
            GetOrder.VERB,
            GetOrders.VERB,
            CancelOrder.VERB,
            PlaceExitOrder.VERB,
            ReplaceOrderPrice.VERB,
        }
        assert parts.state.books == {}
        assert parts.feeds.accounts() == frozenset()
        assert parts.background.tasks() == []
        assert parts.metrics.send_latency == []
    finally:
        await parts.adapter.aclose()


async def test_settings_not_given_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENEX_EXECUTION_RECONCILE_INTERVAL_S", "3.5")
    parts = await assemble(_deps(), _context(), Shell())
    try:
        assert parts.settings.reconcile_interval_s == 3.5
    finally:
        await parts.adapter.aclose()


def test_the_service_has_no_state_before_it_starts() -> None:
    service = ExecutionService(_deps(), durable="execution-test")
    assert service.name == "execution"
    assert service.partitioned
    with pytest.raises(RuntimeError, match="not started"):
        _ = service.state
    with pytest.raises(RuntimeError, match="not started"):
        _ = service.send_latency
