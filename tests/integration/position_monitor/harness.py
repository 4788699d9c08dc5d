"""The position monitor with the real execution and market-data services, in-process.

One NATS server of the module's own (the monitor folds the whole business stream, so
other modules' events for the same simulator account must not be in it), the module's
database with the audit recorder copying the stream, one simulator whose clock is
pinned (speed 0) and moved together with the services' shared `ManualClock`, and a real
local SMTP server (aiosmtpd) receiving the notification e-mails.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.wiring import BrokerWiring
from libs.contracts.envelope import Event
from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.servers import discard, new_nats
from libs.runtime.settings import Settings
from services.audit.recorder import Recorder
from services.execution.service import ExecutionService
from services.position_monitor.bootstrap import MonitorDependencies
from services.position_monitor.service import PositionMonitorService
from services.position_monitor.settings import MonitorSettings, SmtpSecurity, SmtpSettings
from services.simulator.server import SimulatorServer
from tests.integration.execution.harness import (
    ACCOUNT,
    CREDENTIALS,
    Approval,
    Events,
    approval,
    broker_settings,
    control,
    marketable_credit,
    start_execution,
    trident,
)
from tests.integration.market_data.helpers import running_service
from tests.simulator_fixtures import SIM_START

D = Decimal
E = TypeVar("E", bound=Event)
RECIPIENT = "trader@example.com"


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not met in time: {what}")
        await asyncio.sleep(0.05)


@dataclass
class World:
    clock: ManualClock
    bus: Bus
    events: Events
    simulator: SimulatorServer
    adapter: BrokerAdapter
    execution: ExecutionService
    monitor: PositionMonitorService
    recorder: Recorder
    inbox: Inbox
    database_url: str

    async def set_price(self, price: Decimal) -> None:
        await control(self.simulator, "PUT", "/sim/prices/SPY", {"price": str(price)})

    async def spot(self) -> Decimal:
        return D((await control(self.simulator, "GET", "/sim/prices/SPY"))["price"])

    async def set_time(self, at: datetime) -> None:
        """Move the simulator and the services' clock to ``at`` together."""
        await control(self.simulator, "PUT", "/sim/clock", {"time": at.isoformat(), "speed": 0})
        self.clock.set(at)

    def tick(self, seconds: int = 11) -> None:
        """Business time passes (valuations are due again after 10 s)."""
        from datetime import timedelta

        self.clock.advance(timedelta(seconds=seconds))

    async def open(self, *, calls: bool) -> Approval:
        """Publish what strategy and risk would for a Trident at the current spot."""
        suggestion = await trident(self.adapter, self.simulator, calls=calls)
        chosen = approval(suggestion, marketable_credit(suggestion), at=self.clock.now())
        await self.bus.publish_many(chosen.events)
        return chosen

    async def wait_for(
        self, kind: type[E], count: int = 1, timeout: float = 20.0, **where: Any
    ) -> list[E]:
        return await self.events.wait_for(kind, count=count, timeout=timeout, **where)


@asynccontextmanager
async def running_world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    """Everything started; everything stopped (and NATS discarded) at the end."""
    await migrate(database_url)
    nats = new_nats(server_root / "nats-monitor")
    nats.start()
    stack = AsyncExitStack()
    try:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="senex-sim-pm-"))
        simulator = SimulatorServer(Path(tmp), start=SIM_START, seed=7)
        simulator.start()
        stack.callback(simulator.stop)
        await control(simulator, "PUT", "/sim/clock", {"speed": 0})
        clock = ManualClock(SIM_START)

        inbox = Inbox()
        port = free_port()
        smtp = Controller(inbox, hostname="127.0.0.1", port=port)
        smtp.start()
        stack.callback(smtp.stop)

        bus = await Bus.connect(nats.url, "pm-test")
        stack.push_async_callback(bus.close)
        events = Events()
        await events.start(bus)

        recorder = Recorder(bus, database_url, ServiceMetrics("audit"))
        await recorder.start()
        stack.push_async_callback(recorder.stop)

        await stack.enter_async_context(
            running_service(
                nats_url=nats.url,
                database_url=database_url,
                server=simulator,
                vault_key=Fernet.generate_key(),
                clock=clock,
            )
        )
        execution = await start_execution(
            clock, nats.url, database_url, simulator, durable="execution"
        )
        stack.push_async_callback(execution.stop)

        monitor = PositionMonitorService(
            MonitorDependencies(
                clock=clock,
                settings=MonitorSettings(tick_s=0.1, quote_poll_s=0.2, sync_settle_s=0.5),
                smtp=SmtpSettings(
                    host="127.0.0.1",
                    port=port,
                    security=SmtpSecurity.NONE,
                    recipient=RECIPIENT,
                    timeout_s=2.0,
                    backoff_initial_s=0.05,
                    backoff_max_s=0.2,
                ),
                broker=BrokerWiring(
                    settings=broker_settings(simulator),
                    credentials=StaticCredentials({ACCOUNT: CREDENTIALS}),
                ),
            )
        )
        await monitor.start(
            ServiceContext(
                name="position_monitor",
                settings=Settings(nats_url=nats.url, database_url=database_url),
                clock=clock,
                metrics=ServiceMetrics("position_monitor"),
                request_stop=lambda: None,
            )
        )
        stack.push_async_callback(monitor.stop)

        adapter = await stack.enter_async_context(
            BrokerAdapter(broker_settings(simulator), StaticCredentials({ACCOUNT: CREDENTIALS}))
        )
        yield World(
            clock=clock,
            bus=bus,
            events=events,
            simulator=simulator,
            adapter=adapter,
            execution=execution,
            monitor=monitor,
            recorder=recorder,
            inbox=inbox,
            database_url=database_url,
        )
    finally:
        await stack.aclose()
        discard(nats)
