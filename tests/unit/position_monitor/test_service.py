"""The service is the shell its parts use, and nothing of it runs before start."""

from __future__ import annotations

import pytest

from libs.runtime.clock import ManualClock
from libs.runtime.following import ServiceShell
from services.position_monitor.bootstrap import MonitorDependencies
from services.position_monitor.service import PositionMonitorService
from tests.unit.position_monitor.builders import NOW


def test_the_service_is_the_parts_shell_and_nothing_runs_before_start() -> None:
    clock = ManualClock(NOW)
    service = PositionMonitorService(MonitorDependencies(clock=clock), durable="pm-test")
    shell: ServiceShell = service  # checked by mypy: the parts' protocol
    assert service.name == "position_monitor"
    with pytest.raises(RuntimeError, match="not started"):
        _ = shell.clock  # the runner's clock or the given one, from start on
    with pytest.raises(RuntimeError, match="not started"):
        _ = service.state
