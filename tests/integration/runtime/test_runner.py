"""The service runner: /health and /metrics while running, a clean stop on request."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from libs.runtime.runner import HealthReport, ServiceContext, serve
from libs.runtime.settings import Settings, TradingMode
from libs.runtime.sim_clock import SimulatorClock
from services.simulator.server import SimulatorServer
from tests.simulator_fixtures import SIM_START


class Probe:
    """A service whose health the test controls."""

    name = "probe"

    def __init__(self) -> None:
        self.healthy = True
        self.started = False
        self.stopped = False
        self.ctx: ServiceContext | None = None

    async def start(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def health(self) -> HealthReport:
        return HealthReport(self.healthy, {"dependency": "ok" if self.healthy else "down"})


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def test_health_metrics_and_clean_stop() -> None:
    probe = Probe()
    ports: asyncio.Queue[int] = asyncio.Queue()

    async def started(port: int) -> None:
        await ports.put(port)

    task = asyncio.create_task(
        serve(probe, Settings(), install_signals=False, port=0, started=started)
    )
    port = await asyncio.wait_for(ports.get(), timeout=30)
    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/health")
    assert status == 200
    assert json.loads(body) == {"service": "probe", "status": "ok", "checks": {"dependency": "ok"}}

    probe.healthy = False
    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/health")
    assert status == 503
    assert json.loads(body)["checks"] == {"dependency": "down"}

    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert b'senex_service_up{service="probe"} 0.0' in body
    assert b"senex_handler_latency_seconds" in body

    assert probe.ctx is not None
    probe.ctx.request_stop()
    assert await asyncio.wait_for(task, timeout=30) == 0
    assert probe.started
    assert probe.stopped


class FailsToStop(Probe):
    async def stop(self) -> None:
        await asyncio.sleep(3600)


async def test_a_service_that_hangs_on_stop_exits_non_zero() -> None:
    probe = FailsToStop()
    ports: asyncio.Queue[int] = asyncio.Queue()

    async def started(port: int) -> None:
        await ports.put(port)

    settings = Settings(shutdown_grace_s=0.2)
    task = asyncio.create_task(
        serve(probe, settings, install_signals=False, port=0, started=started)
    )
    await asyncio.wait_for(ports.get(), timeout=30)
    assert probe.ctx is not None
    probe.ctx.request_stop()
    assert await asyncio.wait_for(task, timeout=30) == 1


@pytest.mark.parametrize("level", ["INFO"])
def test_log_lines_are_json_with_the_correlation_id(
    level: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from libs.runtime.log import configure_logging, correlation, get_logger

    configure_logging("probe", level, "json")
    with correlation("0192f1a0-0000-7000-8000-000000000001"):
        get_logger("test").info("decided", order="A1")
    get_logger("test").info("after")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["correlation_id"] == "0192f1a0-0000-7000-8000-000000000001"
    assert lines[0]["service"] == "probe"
    assert lines[0]["event"] == "decided"
    assert "correlation_id" not in lines[1]


def test_a_library_logging_at_debug_is_held_to_the_configured_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from libs.runtime.log import configure_logging

    configure_logging("probe", "WARNING", "json")
    chatty = logging.getLogger("tastytrade-like")
    chatty.setLevel(logging.DEBUG)  # what the SDK does to its own logger at import
    chatty.debug("every websocket frame")
    chatty.warning("worth seeing")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["worth seeing"]


async def test_in_paper_mode_business_time_is_the_simulators(simulator: SimulatorServer) -> None:
    probe = Probe()
    ports: asyncio.Queue[int] = asyncio.Queue()

    async def started(port: int) -> None:
        await ports.put(port)

    settings = Settings(mode=TradingMode.PAPER, simulator_url=simulator.url)
    task = asyncio.create_task(
        serve(probe, settings, install_signals=False, port=0, started=started)
    )
    await asyncio.wait_for(ports.get(), timeout=30)
    assert probe.ctx is not None
    assert isinstance(probe.ctx.clock, SimulatorClock)
    # The simulator fixture starts on a June 2025 morning, not today.
    assert probe.ctx.clock.now().date() == SIM_START.date()
    probe.ctx.request_stop()
    assert await asyncio.wait_for(task, timeout=30) == 0
