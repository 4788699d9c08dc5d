"""SIGKILL of the execution process right after it sent an order, then a restart.

The service runs as a real process (`python -m services.execution`, paper mode, business
time from the simulator's clock). The simulator records the order and holds its answer,
so the process dies between sending and recording the answer; the restarted process
must find the order by its client tag and record it: exactly one order at the broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO
from uuid import uuid4

import httpx2
import pytest

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.contracts.execution import OrderAccepted, OrderFilled, OrderSubmitted
from libs.contracts.positions import ExitOrderPlaced, PositionOpened
from libs.domain.orders import opening_order_id
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.servers import ServerProcess
from services.simulator.server import SimulatorServer
from tests.integration.execution.harness import (
    ACCOUNT,
    CREDENTIALS,
    Events,
    World,
    broker_settings,
    control,
    until,
)
from tests.simulator_fixtures import SIM_START

D = Decimal
ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """`python -m services.execution` with the test's NATS, Postgres and simulator."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = int(env["SENEX_METRICS_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self) -> None:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.execution"],
            cwd=ROOT,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        async with httpx2.AsyncClient(trust_env=False) as client:
            for _ in range(int(timeout / 0.1)):
                assert self.proc is not None
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/health")
                    if response.status_code == 200:
                        return
                except httpx2.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"execution did not become healthy:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._out is not None:
            self._out.close()


@pytest.fixture
async def world(
    nats_factory: Callable[[], ServerProcess], database_url: str, simulator: SimulatorServer
) -> AsyncIterator[World]:
    nats = nats_factory()
    bus = await Bus.connect(nats.url, "test")
    events = Events()
    await events.start(bus)
    async with BrokerAdapter(
        broker_settings(simulator), StaticCredentials({ACCOUNT: CREDENTIALS})
    ) as adapter:
        yield World(
            clock=ManualClock(SIM_START),
            bus=bus,
            events=events,
            simulator=simulator,
            adapter=adapter,
            nats_url=nats.url,
            database_url=database_url,
            durable=f"execution-{uuid4().hex[:8]}",
        )
    await bus.close()


@pytest.fixture
def service(world: World, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {
        **os.environ,
        "NATS_URL": world.nats_url,
        "DATABASE_URL": world.database_url,
        "SENEX_MODE": "paper",
        "SENEX_SIMULATOR_URL": world.simulator.url,
        "SENEX_BROKER_SIMULATOR_URL": world.simulator.url,
        "SENEX_BROKER_REQUEST_TIMEOUT_S": "20",
        "SENEX_BROKER_VAULT_KEY_FILE": str(tmp_path / "vault.key"),
        "SENEX_EXECUTION_BACKOFF_SCALE": "0.05",
        "SENEX_EXECUTION_RECONCILE_INTERVAL_S": "0.5",
        "SENEX_METRICS_PORT": str(_free_port()),
        "SENEX_LOG_FORMAT": "console",
    }
    process = ServiceProcess(env, tmp_path / "execution.log")
    yield process
    process.stop()


async def test_sigkill_after_sending_then_restart_records_exactly_one_order(
    world: World, service: ServiceProcess
) -> None:
    service.start()
    await service.wait_healthy()
    # A first order that rests: the process now follows the account's order stream.
    await world.approve(limit=D("40.00"))
    await world.events.wait_for(OrderAccepted, timeout=20)
    approval = await world.prepare()
    # The broker records (and fills) the order but holds its answer for 20 s, and the
    # account stream is down for its first reconnect backoff: nothing tells the process.
    await world.fault("timeout", seconds=20)
    await control(world.simulator, "POST", "/sim/sockets/drop", {"kind": "account"})
    await world.publish(approval)
    order_id = opening_order_id(approval.reserved.reservation_id)
    (submitted,) = await world.events.wait_for(OrderSubmitted, order_id=order_id, timeout=20)
    tag = submitted.client_tag

    async def at_broker() -> int:
        return len(await world.broker_orders(tag))

    for _ in range(100):
        if await at_broker():
            break
        await asyncio.sleep(0.05)
    service.kill()  # between sending and recording the answer
    assert await at_broker() == 1
    assert not world.events.of(OrderAccepted, order_id=order_id)

    service.start()
    (accepted,) = await world.events.wait_for(OrderAccepted, order_id=order_id, timeout=30)
    await world.events.wait_for(OrderFilled, order_id=order_id)
    await world.events.wait_for(PositionOpened)
    await world.events.wait_for(ExitOrderPlaced, count=3)
    await until(lambda: len(world.events.of(OrderAccepted)) == 5, timeout=15)

    orders = await world.broker_orders(tag)
    assert [str(o["id"]) for o in orders] == [accepted.broker_order_id]
    assert len(world.events.of(OrderSubmitted, order_id=order_id)) == 1
    # The resting order, the opening and its three exits.
    assert len(await world.broker_orders()) == 5
