"""The gateway's composition root: what it is built from, and the building.

`GatewayDependencies` is everything that may be chosen from outside (a test's settings,
clock and time sources, the broker settings); `assemble` is the one place that opens
the credentials vault and the database pool, builds the accounts, the request context,
the WebSocket hub and the app, and hands each what it needs. The service calls it at
start, once connected (the database URL and the trading mode come from the runner).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from libs.runtime.runner import ServiceContext
from services.gateway.accounts import Accounts, SettingsStore
from services.gateway.app import HttpMetrics, build_app
from services.gateway.auth import SessionStore
from services.gateway.context import Gateway
from services.gateway.db import Pool
from services.gateway.ratelimit import LoginLimiter, SlidingWindowLimiter
from services.gateway.settings import GatewaySettings
from services.gateway.users import UserStore
from services.gateway.ws.hub import Hub


def real_now() -> datetime:
    """Real time (sessions, cookies and login windows never use the business clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class GatewayDependencies:
    """What the gateway may be given; each default is production's."""

    settings: GatewaySettings | None = None
    """The gateway's settings (None: the environment's, ``SENEX_GATEWAY_*``)."""
    broker: BrokerSettings | None = None
    """Where links are verified and stored (None: the environment's, ``SENEX_BROKER_*``)."""
    clock: Clock | None = None
    """The business clock (None: the runner's)."""
    wall_now: Callable[[], datetime] = real_now
    """Real time of sessions, cookies and login windows."""
    monotonic: Callable[[], float] | None = None
    """Monotonic seconds of the rate limits (None: the event loop's)."""


@dataclass(frozen=True)
class GatewayParts:
    """The gateway's pool, request context, hub and app, built by `assemble`."""

    settings: GatewaySettings
    pool: Pool
    gateway: Gateway
    hub: Hub
    app: FastAPI


async def assemble(
    dependencies: GatewayDependencies, ctx: ServiceContext, bus_of: Callable[[], Bus]
) -> GatewayParts:
    """Every part of the gateway, on the bus ``bus_of`` gives (once connected)."""
    settings = dependencies.settings or GatewaySettings()
    broker = dependencies.broker or BrokerSettings()
    vault = await CredentialsVault.open(ctx.settings.database_url, broker)
    pool = Pool(ctx.settings.database_url, settings.db_pool_size)  # connects lazily
    accounts = Accounts(
        vault=vault,
        settings_store=SettingsStore(pool),
        broker_settings=broker,
        publish=lambda event: bus_of().publish(event),
        system_mode=ctx.settings.mode,
    )
    limiter = LoginLimiter(
        per_user=SlidingWindowLimiter(settings.login_attempts_per_user, settings.login_window_s),
        per_address=SlidingWindowLimiter(
            settings.login_attempts_per_address, settings.login_window_s
        ),
    )
    gateway = Gateway(
        settings=settings,
        users=UserStore(pool),
        sessions=SessionStore(pool, timedelta(seconds=settings.session_ttl_s)),
        accounts=accounts,
        limiter=limiter,
        bus_of=bus_of,
        clock=dependencies.clock or ctx.clock,
        wall_now=dependencies.wall_now,
        monotonic=dependencies.monotonic or asyncio.get_running_loop().time,
    )
    hub = Hub(bus_of, lease_s=settings.quote_lease_s)
    app = build_app(gateway, metrics=HttpMetrics(ctx.metrics.registry), hub=hub)
    return GatewayParts(settings=settings, pool=pool, gateway=gateway, hub=hub, app=app)
