"""A service connected to the platform: the bus and PostgreSQL, checked by /health.

Every Senex service starts as one of these; later layers (bus consumers, projections,
the broker adapter) are added by the service's own shell on top of the connections.
"""

from __future__ import annotations

import asyncio

import psycopg

from libs.runtime.bus import Bus
from libs.runtime.log import get_logger
from libs.runtime.runner import HealthReport, ServiceContext

#: A dependency check slower than this counts as failed: /health must answer quickly.
CHECK_TIMEOUT_S = 2.0


class ConnectedService:
    """Connects to the bus (reconnecting forever) and PostgreSQL (migrated at start)."""

    def __init__(self, name: str, *, migrate: bool = True) -> None:
        self.name = name
        self._migrate = migrate
        self._bus: Bus | None = None
        self._db: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._ctx: ServiceContext | None = None
        self._log = get_logger(name)

    @property
    def bus(self) -> Bus:
        """The service's bus connection; available once started."""
        if self._bus is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._bus

    @property
    def context(self) -> ServiceContext:
        """The runner's context; available once started."""
        if self._ctx is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._ctx

    async def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        settings = ctx.settings
        if self._migrate:
            from libs.eventlog.migrate import migrate_async

            applied = await migrate_async(settings.database_url)
            if applied:
                self._log.info("migrations applied", versions=applied)
        self._db = await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True)
        self._bus = await Bus.connect(settings.nats_url, self.name, metrics=ctx.metrics)

    async def stop(self) -> None:
        if self._bus is not None:
            await self._bus.close()
        if self._db is not None:
            await self._db.close()

    async def health(self) -> HealthReport:
        checks = {"nats": await self._check_nats(), "postgres": await self._check_postgres()}
        return HealthReport(healthy=all(v == "ok" for v in checks.values()), checks=checks)

    async def _check_nats(self) -> str:
        if self._bus is None:
            return "not connected"
        if not self._bus.connected:
            return "reconnecting"
        try:
            await asyncio.wait_for(self._bus.flush(), timeout=CHECK_TIMEOUT_S)
        except Exception as exc:  # any failure is reported, not raised: this is a probe
            return f"error: {type(exc).__name__}: {exc}"
        return "ok"

    async def _check_postgres(self) -> str:
        if self._db is None:
            return "not connected"
        try:
            await asyncio.wait_for(self._db.execute("SELECT 1"), timeout=CHECK_TIMEOUT_S)
        except Exception as exc:  # reported on /health and logged by the caller's probe
            if self._db.broken:
                await self._reconnect_db()
            return f"error: {type(exc).__name__}: {exc}"
        return "ok"

    async def _reconnect_db(self) -> None:
        try:
            self._db = await psycopg.AsyncConnection.connect(
                self.context.settings.database_url, autocommit=True, connect_timeout=2
            )
        except psycopg.OperationalError as exc:
            self._log.warning("postgres reconnect failed", error=str(exc))
