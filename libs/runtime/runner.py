"""Runs one service as a process: logging, /health and /metrics, clean stop on SIGTERM.

A service is an object with ``start``/``stop`` coroutines and a ``health`` method. The
runner owns everything around it, so each ``python -m services.X`` is three lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from libs.runtime.clock import Clock, SystemClock
from libs.runtime.log import configure_logging, get_logger
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.settings import Settings, TradingMode
from libs.runtime.sim_clock import SimulatorClock


@dataclass(frozen=True)
class HealthReport:
    """What /health answers: overall status and one line per dependency check."""

    healthy: bool
    checks: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceContext:
    """What the runner hands a service: its settings, clock, metrics and a stop request."""

    name: str
    settings: Settings
    clock: Clock
    metrics: ServiceMetrics
    request_stop: Callable[[], None]


class Service(Protocol):
    """A long-running service driven by `run_service`."""

    name: str

    async def start(self, ctx: ServiceContext) -> None:
        """Connect to dependencies and begin work; return once running."""
        ...

    async def stop(self) -> None:
        """Finish in-flight work and release resources."""
        ...

    async def health(self) -> HealthReport:
        """Current health, checked against live dependencies."""
        ...


class _EndpointServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _http_app(service: Service, metrics: ServiceMetrics) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        report = await service.health()
        metrics.up.labels(service.name).set(1 if report.healthy else 0)
        body = {
            "service": service.name,
            "status": "ok" if report.healthy else "unhealthy",
            "checks": report.checks,
        }
        return JSONResponse(body, status_code=200 if report.healthy else 503)

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/health", health), Route("/metrics", prometheus)])


async def serve(
    service: Service,
    settings: Settings,
    clock: Clock | None = None,
    *,
    install_signals: bool = True,
    port: int | None = None,
    started: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Run ``service`` until SIGTERM/SIGINT (or a stop request); return the exit code.

    ``port`` overrides the settings' health/metrics port (0 picks a free one);
    ``started`` is awaited with the bound port once the service is up.
    """
    log = get_logger("runner")
    metrics = ServiceMetrics(service.name)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_requested.set)
    sim_clock: SimulatorClock | None = None
    if clock is None and settings.mode is TradingMode.PAPER and settings.simulator_url:
        # Paper mode: business time (schedules, DTE, expiries) is the simulator's.
        sim_clock = SimulatorClock(settings.simulator_url)
        await sim_clock.start()
        clock = sim_clock
    ctx = ServiceContext(
        name=service.name,
        settings=settings,
        clock=clock or SystemClock(),
        metrics=metrics,
        request_stop=stop_requested.set,
    )
    config = uvicorn.Config(
        _http_app(service, metrics),
        host=settings.metrics_host,
        port=settings.metrics_port_for(service.name) if port is None else port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    http = _EndpointServer(config)
    exit_code = 0
    await service.start(ctx)
    # Everything allocated so far (modules, contract schemas, connections) lives as long
    # as the process: moving it out of the collector's generations keeps every later
    # full collection from walking it again, which costs a hot consumer several percent.
    gc.freeze()
    metrics.up.labels(service.name).set(1)
    http_task = asyncio.create_task(http.serve(), name=f"{service.name}-http")
    try:
        while not http.started:
            if http_task.done():
                # Bind failure and the like: surface uvicorn's exception or exit.
                await http_task
                raise RuntimeError(f"health endpoint of {service.name} failed to start")
            await asyncio.sleep(0.01)
        bound = int(http.servers[0].sockets[0].getsockname()[1])
        log.info("service started", port=bound, mode=settings.mode.value)
        if started is not None:
            await started(bound)
        await stop_requested.wait()
        log.info("service stopping")
    except Exception:
        log.exception("service failed")
        exit_code = 1
    finally:
        metrics.up.labels(service.name).set(0)
        try:
            await asyncio.wait_for(service.stop(), timeout=settings.shutdown_grace_s)
        except TimeoutError:
            log.error(
                "service did not stop within the grace period", grace_s=settings.shutdown_grace_s
            )
            exit_code = exit_code or 1
        http.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await http_task
        if sim_clock is not None:
            await sim_clock.stop()
        log.info("service stopped", exit_code=exit_code)
    return exit_code


def run_service(service: Service, settings: Settings | None = None) -> int:
    """Entry point of ``python -m services.X``: configure logging, serve, return exit code."""
    settings = settings or Settings()
    configure_logging(service.name, settings.log_level, settings.log_format)
    return asyncio.run(serve(service, settings))
