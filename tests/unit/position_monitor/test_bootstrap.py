"""The composition root: defaults of the dependencies, and parts wired to one state."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry

from libs.broker.adapter import StaticCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.wiring import BrokerWiring
from libs.contracts.commands import GetPositions
from libs.runtime.clock import ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.settings import Settings
from services.position_monitor.bootstrap import MonitorDependencies, assemble
from services.position_monitor.metrics import OPEN_POSITIONS
from services.position_monitor.settings import MonitorSettings, SmtpSettings
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import ACCOUNT, NOW
from tests.unit.position_monitor.fakes import FakeShell, opened


def test_every_dependency_defaults_to_the_environment() -> None:
    deps = MonitorDependencies()
    assert (deps.clock, deps.settings, deps.smtp) == (None, None, None)
    assert deps.broker == BrokerWiring()
    with pytest.raises(dataclasses.FrozenInstanceError):
        deps.settings = MonitorSettings()  # type: ignore[misc]


async def test_assemble_builds_the_parts_around_one_state() -> None:
    clock = ManualClock(NOW)
    deps = MonitorDependencies(
        clock=clock,
        settings=MonitorSettings(tick_s=0.1),
        smtp=SmtpSettings(enabled=False),
        broker=BrokerWiring(settings=BrokerSettings(), credentials=StaticCredentials({})),
    )
    registry = CollectorRegistry()
    ctx = ServiceContext(
        name="position_monitor",
        settings=Settings(),
        clock=clock,
        metrics=ServiceMetrics("position_monitor", registry),
        request_stop=lambda: None,
    )
    parts = await assemble(FakeShell(MonitorState()), deps, ctx)
    try:
        assert parts.feeds.accounts() == frozenset()
        assert parts.notifier.settings.enabled is False
        # The gauges and the queries read the state the follower folds into.
        sample = {"service": "position_monitor"}
        assert registry.get_sample_value(OPEN_POSITIONS, sample) == 0
        parts.state.apply(opened())
        assert registry.get_sample_value(OPEN_POSITIONS, sample) == 1
        listed = await parts.queries.get_positions(GetPositions(account_id=ACCOUNT))
        assert len(listed.positions) == 1
    finally:
        await parts.notifier.stop()
        await parts.adapter.aclose()
