"""The audit service's shell: bus, recorder and query handlers wired together."""

from __future__ import annotations

from typing import Any

import psycopg

from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.runner import HealthReport, ServiceContext
from services.audit.queries import AuditQueries
from services.audit.recorder import Recorder


class AuditService:
    """Records the business stream and answers audit queries over NATS."""

    name = "audit"

    def __init__(self, *, batch_size: int | None = None) -> None:
        self._batch_size = batch_size
        self._bus: Bus | None = None
        self._recorder: Recorder | None = None
        self._queries_conn: psycopg.AsyncConnection[Any] | None = None

    async def start(self, ctx: ServiceContext) -> None:
        settings = ctx.settings
        await migrate(settings.database_url)
        self._bus = await Bus.connect(settings.nats_url, self.name, metrics=ctx.metrics)
        self._recorder = Recorder(
            self._bus,
            settings.database_url,
            ctx.metrics,
            batch_size=self._batch_size or settings.audit_batch_size,
        )
        await self._recorder.start()
        self._queries_conn = await psycopg.AsyncConnection.connect(
            settings.database_url, autocommit=True
        )
        queries = AuditQueries(self._queries_conn)
        await self._bus.serve(
            self.name,
            {
                "get_events": queries.get_events,
                "get_causal_chain": queries.get_causal_chain,
                "verify_event_log": queries.verify,
            },
        )

    async def stop(self) -> None:
        if self._recorder is not None:
            await self._recorder.stop()
        if self._bus is not None:
            await self._bus.close()
        if self._queries_conn is not None:
            await self._queries_conn.close()

    @property
    def recorder(self) -> Recorder:
        """The running recorder (after start)."""
        if self._recorder is None:
            raise RuntimeError("audit service not started")
        return self._recorder

    async def health(self) -> HealthReport:
        checks = {
            "nats": "ok" if self._bus is not None and self._bus.connected else "disconnected",
            "recorder": "ok"
            if self._recorder is not None and self._recorder.running
            else "stopped",
        }
        return HealthReport(all(v == "ok" for v in checks.values()), checks)
