"""The gateway service: the public HTTP API on its own port, beside the runner's /health.

The runner serves /health and /metrics on the gateway's metrics port (9106); the
public app (REST and the WebSocket ``/ws``) is served by a second uvicorn server on
``SENEX_GATEWAY_PORT`` (8000). The gateway holds no projection: users, sessions and
settings are its own tables, links are the vault's, and everything else is asked of
the owning service over NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI

from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault
from libs.contracts.envelope import Event
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from libs.runtime.connected import ConnectedService
from libs.runtime.log import get_logger
from libs.runtime.runner import HealthReport, ServiceContext
from services.gateway.accounts import Accounts, SettingsStore
from services.gateway.app import HttpMetrics, build_app
from services.gateway.auth import SessionStore
from services.gateway.context import Gateway
from services.gateway.db import Pool
from services.gateway.ratelimit import LoginLimiter, SlidingWindowLimiter
from services.gateway.settings import GatewaySettings
from services.gateway.users import UserStore
from services.gateway.ws.hub import Hub

SERVICE = "gateway"
#: How often expired sessions are deleted.
PURGE_INTERVAL_S = 600.0


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _wall_now() -> datetime:
    return datetime.now(UTC)


class GatewayService:
    """Users, sessions, accounts and the REST API over the bus."""

    name = SERVICE

    def __init__(
        self,
        settings: GatewaySettings | None = None,
        broker_settings: BrokerSettings | None = None,
        *,
        clock: Clock | None = None,
        wall_now: Callable[[], datetime] = _wall_now,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """Settings default to the environment (``SENEX_GATEWAY_*``, ``SENEX_BROKER_*``)."""
        self._settings = settings or GatewaySettings()
        self._broker_settings_given = broker_settings
        self._clock_override = clock
        self._wall_now = wall_now
        self._monotonic = monotonic
        self._connected = ConnectedService(SERVICE)
        self._pool: Pool | None = None
        self._server: _ApiServer | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self.app: FastAPI | None = None
        self.gateway: Gateway | None = None
        self.hub: Hub | None = None
        self._log = get_logger(SERVICE)

    @property
    def bus(self) -> Bus:
        return self._connected.bus

    @property
    def url(self) -> str:
        """The public API's base URL (after start)."""
        if self._port is None:
            raise RuntimeError("the gateway is not started")
        host = self._settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        return f"http://{shown}:{self._port}"

    async def _publish(self, event: Event) -> None:
        await self.bus.publish(event)

    async def start(self, ctx: ServiceContext) -> None:
        broker_settings = self._broker_settings_given or BrokerSettings()
        await self._connected.start(ctx)
        pool = self._pool = Pool(ctx.settings.database_url, self._settings.db_pool_size)
        vault = await CredentialsVault.open(ctx.settings.database_url, broker_settings)
        accounts = Accounts(
            vault=vault,
            settings_store=SettingsStore(pool),
            broker_settings=broker_settings,
            publish=self._publish,
            system_mode=ctx.settings.mode,
        )
        s = self._settings
        limiter = LoginLimiter(
            per_user=SlidingWindowLimiter(s.login_attempts_per_user, s.login_window_s),
            per_address=SlidingWindowLimiter(s.login_attempts_per_address, s.login_window_s),
        )
        loop = asyncio.get_running_loop()
        self.gateway = Gateway(
            settings=s,
            users=UserStore(pool),
            sessions=SessionStore(pool, timedelta(seconds=s.session_ttl_s)),
            accounts=accounts,
            limiter=limiter,
            bus_of=lambda: self.bus,
            clock=self._clock_override or ctx.clock,
            wall_now=self._wall_now,
            monotonic=self._monotonic or loop.time,
        )
        self.hub = Hub(lambda: self.bus, lease_s=s.quote_lease_s)
        self.app = build_app(self.gateway, metrics=HttpMetrics(ctx.metrics.registry), hub=self.hub)
        await self._serve(self.app)
        self._purge_task = asyncio.create_task(self._purge(), name="gateway-session-purge")
        self._log.info("gateway listening", url=self.url, mode=accounts.mode.value)

    async def _serve(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app,
            host=self._settings.host,
            port=self._settings.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            # A client frame is a few hundred bytes; a huge one is closed with 1009 by
            # uvicorn before it is buffered (ws.protocol answers anything over 16 KiB).
            ws_max_size=1024 * 1024,
        )
        server = self._server = _ApiServer(config)
        task = self._server_task = asyncio.create_task(server.serve(), name="gateway-http")
        while not server.started:
            if task.done():
                await task  # a bind failure: uvicorn's exception, or its SystemExit
                raise RuntimeError(f"the gateway could not listen on port {config.port}")
            await asyncio.sleep(0.01)
        self._port = int(server.servers[0].sockets[0].getsockname()[1])

    async def _purge(self) -> None:
        assert self.gateway is not None
        while True:
            await asyncio.sleep(PURGE_INTERVAL_S)
            try:
                removed = await self.gateway.sessions.purge_expired(self._wall_now())
            except Exception as exc:  # the next round tries again; logged, not fatal
                self._log.warning("expired sessions not purged", error=repr(exc))
            else:
                if removed:
                    self._log.info("expired sessions purged", count=removed)

    async def stop(self) -> None:
        if self.hub is not None:
            # Clients get a close frame (1001) before the server stops listening.
            await self.hub.close()
        if self._purge_task is not None:
            self._purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._server_task
        if self._pool is not None:
            await self._pool.close()
        await self._connected.stop()

    async def health(self) -> HealthReport:
        report = await self._connected.health()
        checks: dict[str, Any] = dict(report.checks)
        server = self._server
        checks["http"] = "ok" if server is not None and server.started else "not listening"
        return HealthReport(all(v == "ok" for v in checks.values()), checks)
