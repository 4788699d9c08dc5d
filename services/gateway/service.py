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
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from libs.runtime.bus import Bus
from libs.runtime.connected import ConnectedService
from libs.runtime.log import get_logger
from libs.runtime.runner import HealthReport, ServiceContext
from libs.runtime.tasks import cancel_and_wait
from services.gateway.bootstrap import GatewayDependencies, GatewayParts, assemble
from services.gateway.context import Gateway
from services.gateway.settings import GatewaySettings
from services.gateway.ws.hub import Hub

SERVICE = "gateway"
#: How often expired sessions are deleted.
PURGE_INTERVAL_S = 600.0


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class GatewayService:
    """Users, sessions, accounts and the REST API over the bus."""

    name = SERVICE

    def __init__(self, dependencies: GatewayDependencies) -> None:
        """Built by `bootstrap.assemble` from ``dependencies`` at start."""
        self._deps = dependencies
        self._connected = ConnectedService(SERVICE)
        # None until start; stop and /health also run after a start that failed midway.
        self._parts: GatewayParts | None = None
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
        if self._port is None or self._parts is None:
            raise RuntimeError("the gateway is not started")
        host = self._parts.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        return f"http://{shown}:{self._port}"

    async def start(self, ctx: ServiceContext) -> None:
        await self._connected.start(ctx)
        parts = self._parts = await assemble(self._deps, ctx, lambda: self.bus)
        self.gateway, self.hub, self.app = parts.gateway, parts.hub, parts.app
        await self._serve(parts.app, parts.settings)
        self._purge_task = asyncio.create_task(self._purge(), name="gateway-session-purge")
        self._log.info("gateway listening", url=self.url, mode=parts.gateway.accounts.mode.value)

    async def _serve(self, app: FastAPI, settings: GatewaySettings) -> None:
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
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
                removed = await self.gateway.sessions.purge_expired(self._deps.wall_now())
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
            await cancel_and_wait([self._purge_task])
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._server_task
        if self._parts is not None:
            await self._parts.pool.close()
        await self._connected.stop()

    async def health(self) -> HealthReport:
        report = await self._connected.health()
        checks: dict[str, Any] = dict(report.checks)
        server = self._server
        checks["http"] = "ok" if server is not None and server.started else "not listening"
        return HealthReport(all(v == "ok" for v in checks.values()), checks)
