"""Running the market-data service in-process against real NATS, Postgres and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx2
import nats
from nats.aio.msg import Msg
from pydantic import SecretStr

from libs.broker.settings import BrokerSettings
from libs.broker.wiring import BrokerWiring
from libs.contracts.envelope import Event
from libs.contracts.registry import parse_event
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.settings import Settings, TradingMode
from services.market_data.bootstrap import MarketDataDependencies
from services.market_data.service import MarketDataService
from services.market_data.settings import MarketDataSettings
from services.simulator.server import SimulatorServer

WAIT = 15.0  # real seconds any one expected thing may take


async def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """Call the simulator's ``/sim/`` control API."""
    async with httpx2.AsyncClient(base_url=server.url, trust_env=False) as client:
        response = await client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


async def set_price(server: SimulatorServer, symbol: str, price: str) -> None:
    """Pin an underlying's price (its quote is then price -/+ one cent, unchanging)."""
    await control(server, "PUT", f"/sim/prices/{symbol}", {"price": price})


class Collector:
    """Every event published on a subject pattern (core NATS subscription)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._new = asyncio.Event()

    async def on_msg(self, msg: Msg) -> None:
        self.events.append(parse_event(msg.data))
        self._new.set()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = WAIT) -> Event:
        """The first collected event matching ``predicate`` (waiting for it)."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._new.clear()
                await self._new.wait()

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [e for e in self.events if predicate(e)]


@asynccontextmanager
async def collect(nats_url: str, subject: str) -> AsyncIterator[Collector]:
    """Collect events on ``subject`` while the block runs."""
    nc = await nats.connect(nats_url)
    collector = Collector()
    await nc.subscribe(subject, cb=collector.on_msg)
    await nc.flush()
    try:
        yield collector
    finally:
        await nc.drain()


def broker_settings(
    server: SimulatorServer, vault_key: bytes, mode: TradingMode = TradingMode.PAPER
) -> BrokerSettings:
    settings = BrokerSettings(
        simulator_url=server.url,
        request_timeout_s=5,
        vault_key=SecretStr(vault_key.decode()),
    )
    # ``mode`` is read only from its environment aliases, so it is set by copy.
    return settings.model_copy(update={"mode": mode})


@asynccontextmanager
async def running_service(
    *,
    nats_url: str,
    database_url: str,
    server: SimulatorServer,
    vault_key: bytes,
    clock: ManualClock,
    mode: TradingMode = TradingMode.PAPER,
    **overrides: Any,
) -> AsyncIterator[tuple[MarketDataService, Bus]]:
    """A started service (and a client bus) until the block ends."""
    settings = Settings(nats_url=nats_url, database_url=database_url, mode=mode)
    service = MarketDataService(
        MarketDataDependencies(
            MarketDataSettings(tick_s=0.05, credentials_retry_s=0.5, **overrides),
            BrokerWiring(broker_settings(server, vault_key, mode)),
        )
    )
    ctx = ServiceContext(
        name="market_data",
        settings=settings,
        clock=clock,
        metrics=ServiceMetrics("market_data"),
        request_stop=lambda: None,
    )
    await service.start(ctx)
    bus = await Bus.connect(nats_url, "md-test-client")
    try:
        yield service, bus
    finally:
        await bus.close()
        await service.stop()


async def eventually(check: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.05)


def ny(text: str) -> datetime:
    return datetime.fromisoformat(text)


def money(text: str) -> Decimal:
    return Decimal(text)
