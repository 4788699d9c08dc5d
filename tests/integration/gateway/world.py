"""The gateway over HTTP with the real services behind it, for one test module.

One world per module (starting and warming market data costs seconds): its own NATS,
the module's database, a simulator pinned in time and price, users created the way
``senex user create`` creates them (paper: a simulator customer each), then audit,
market data, strategy, risk and the gateway in-process. Execution and the position
monitor run only when asked (``full=True``); otherwise their endpoints answer
SERVICE_UNAVAILABLE.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
from pydantic import SecretStr

from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault
from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ChainSnapshotReply,
    GetChainSnapshot,
    GetMarketCondition,
    MarketConditionReply,
)
from libs.contracts.errors import MarketDataStaleError
from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.servers import ServerProcess, discard, new_nats
from libs.runtime.settings import Settings
from libs.runtime.settings import TradingMode as SystemMode
from services.audit.service import AuditService
from services.gateway.accounts import Accounts, SettingsStore
from services.gateway.bootstrap import GatewayDependencies
from services.gateway.db import Pool
from services.gateway.service import GatewayService
from services.gateway.settings import GatewaySettings
from services.gateway.users import UserStore
from services.simulator.server import SimulatorServer
from services.strategy.service import StrategyService
from tests.integration.market_data.helpers import (
    Collector,
    collect,
    control,
    eventually,
    running_service,
    set_price,
)
from tests.integration.risk.harness import VAULT_KEY, broker_settings, start_risk
from tests.integration.strategy.harness import start_strategy
from tests.simulator_fixtures import SIM_START

PASSWORD = "correct horse battery"
#: Inside the seeded closes' bands (see tests/integration/strategy/test_with_market_data.py).
PRICE = "589.00"
#: Carol's cash: small enough that a W = 3 trident lands in the conservative template's
#: WARNING band (max risk 181 of 0.40 x 628 available: 72 %), so approving it needs a
#: confirmation.
CAROL_CASH = Decimal("628.00")


@dataclass
class World:
    simulator: SimulatorServer
    clock: ManualClock
    nats_url: str
    dsn: str
    bus: Bus
    gateway: GatewayService
    strategy: StrategyService
    events: Collector
    accounts: dict[str, str] = field(default_factory=dict)
    """Each user's paper account number."""

    @property
    def url(self) -> str:
        return self.gateway.url

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx2.AsyncClient]:
        async with httpx2.AsyncClient(base_url=self.url, trust_env=False, timeout=30) as c:
            yield c

    async def login(self, client: httpx2.AsyncClient, user: str) -> str:
        """Log ``user`` in on ``client``; the CSRF token (also set as a default header)."""
        response = await client.post(
            "/api/auth/login", json={"username": user, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        return token

    @asynccontextmanager
    async def user(self, name: str) -> AsyncIterator[httpx2.AsyncClient]:
        async with self.client() as c:
            await self.login(c, name)
            yield c


def error_of(response: httpx2.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"kind", "message", "field", "details"}, error
    return error


async def _link_small_customer(
    dsn: str, bus: Bus, user_id: str, cash: Decimal, server: SimulatorServer
) -> str:
    """A user whose simulator customer starts with ``cash`` (the CLI always gives 100k)."""
    pool = Pool(dsn, 1)
    try:
        await UserStore(pool).create(user_id, PASSWORD)
        body = await control(
            server,
            "POST",
            "/sim/customers",
            {"name": user_id, "accounts": 1, "starting-cash": str(cash)},
        )
        settings = broker_settings(server)
        accounts = Accounts(
            vault=await CredentialsVault.open(dsn, settings),
            settings_store=SettingsStore(pool),
            broker_settings=settings,
            publish=bus.publish,
            system_mode=SystemMode.PAPER,
        )
        link = await accounts.link(
            user_id=user_id,
            credentials=BrokerCredentials(
                client_secret=SecretStr(body["client-secret"]),
                refresh_token=SecretStr(body["refresh-token"]),
            ),
            account_number=None,
            nickname=None,
            now=SIM_START,
        )
        return link.account_number
    finally:
        await pool.close()


async def _warm(bus: Bus, account: str) -> None:
    """Wait until market data has QQQ's bands and every quote of the chain window."""

    async def condition() -> MarketConditionReply | None:
        try:
            return await bus.request(
                GetMarketCondition(account_id=account, underlying=Underlying.QQQ),
                MarketConditionReply,
            )
        except MarketDataStaleError:
            return None

    async def chain() -> ChainSnapshotReply | None:
        reply = await bus.request(
            GetChainSnapshot(account_id=account, underlying=Underlying.QQQ, wait_seconds=5),
            ChainSnapshotReply,
            timeout=10,
        )
        return reply if reply.expirations and not reply.missing else None

    await eventually(condition, timeout=30)
    await eventually(chain, timeout=30)


def _has_balance(strategy: StrategyService, account: str) -> Callable[[], bool]:
    return lambda: strategy.account(account).balance is not None


def _context(name: str, nats_url: str, dsn: str, clock: ManualClock) -> ServiceContext:
    return ServiceContext(
        name=name,
        settings=Settings(nats_url=nats_url, database_url=dsn, mode=SystemMode.PAPER),
        clock=clock,
        metrics=ServiceMetrics(name),
        request_stop=lambda: None,
    )


async def _start_execution_and_monitor(
    stack: AsyncExitStack, settings: BrokerSettings, nats_url: str, dsn: str, clock: ManualClock
) -> None:
    """Execution and the position monitor, both reading credentials from the vault."""
    from libs.broker.wiring import BrokerWiring
    from services.execution.bootstrap import ExecutionDependencies
    from services.execution.service import ExecutionService
    from services.execution.settings import ExecutionSettings
    from services.position_monitor.bootstrap import MonitorDependencies
    from services.position_monitor.service import PositionMonitorService
    from services.position_monitor.settings import SmtpSettings

    execution = ExecutionService(
        ExecutionDependencies(
            clock=clock,
            settings=ExecutionSettings(backoff_scale=0.05, reconcile_interval_s=0.5),
            broker=BrokerWiring(settings=settings),
        )
    )
    await execution.start(_context("execution", nats_url, dsn, clock))
    stack.push_async_callback(execution.stop)
    monitor = PositionMonitorService(
        MonitorDependencies(
            clock=clock, smtp=SmtpSettings(enabled=False), broker=BrokerWiring(settings=settings)
        )
    )
    await monitor.start(_context("position_monitor", nats_url, dsn, clock))
    stack.push_async_callback(monitor.stop)


@asynccontextmanager
async def running_world(server_root: Path, dsn: str, *, full: bool = False) -> AsyncIterator[World]:
    from libs.cli.user import create_user

    nats: ServerProcess = new_nats(Path(tempfile.mkdtemp(prefix="gw-nats", dir=server_root)))
    nats.start()
    await migrate(dsn)
    sim_dir = tempfile.TemporaryDirectory(prefix="senex-gw-sim-")
    simulator = SimulatorServer(Path(sim_dir.name), start=SIM_START, seed=7)
    simulator.start()
    clock = ManualClock(SIM_START)
    settings = broker_settings(simulator)
    try:
        await control(simulator, "PUT", "/sim/clock", {"time": SIM_START.isoformat(), "speed": 0})
        await set_price(simulator, "QQQ", PRICE)
        async with AsyncExitStack() as stack:
            events = await stack.enter_async_context(collect(nats.url, "senex.evt.>"))
            bus = await Bus.connect(nats.url, "gateway-test")
            stack.push_async_callback(bus.close)
            accounts: dict[str, str] = {}
            for name in ("alice", "bob"):
                user_id, account = await create_user(
                    username=name,
                    password=PASSWORD,
                    database_url=dsn,
                    nats_url=nats.url,
                    link=True,
                    broker_settings=settings,
                )
                assert account is not None
                accounts[user_id] = account
            accounts["carol"] = await _link_small_customer(dsn, bus, "carol", CAROL_CASH, simulator)
            audit = AuditService(batch_size=100)
            await audit.start(_context("audit", nats.url, dsn, clock))
            stack.push_async_callback(audit.stop)
            await stack.enter_async_context(
                running_service(
                    nats_url=nats.url,
                    database_url=dsn,
                    server=simulator,
                    vault_key=VAULT_KEY,
                    clock=clock,
                )
            )
            strategy = await start_strategy(clock, nats.url, dsn)
            stack.push_async_callback(strategy.stop)
            risk = await start_risk(simulator, nats.url, dsn, clock)
            stack.push_async_callback(risk.stop)
            if full:
                await _start_execution_and_monitor(stack, settings, nats.url, dsn, clock)
            gateway = GatewayService(
                GatewayDependencies(
                    GatewaySettings(port=0, login_attempts_per_address=1000, ws_recheck_s=1.0),
                    settings,
                    clock=clock,
                )
            )
            await gateway.start(_context("gateway", nats.url, dsn, clock))
            stack.push_async_callback(gateway.stop)
            for user in ("alice", "carol"):
                await eventually(_has_balance(strategy, accounts[user]), timeout=30)
            await _warm(bus, accounts["alice"])
            yield World(
                simulator=simulator,
                clock=clock,
                nats_url=nats.url,
                dsn=dsn,
                bus=bus,
                gateway=gateway,
                strategy=strategy,
                events=events,
                accounts=accounts,
            )
    finally:
        simulator.stop()
        sim_dir.cleanup()
        discard(nats)
