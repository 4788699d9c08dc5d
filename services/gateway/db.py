"""A small pool of PostgreSQL connections for the gateway's own tables.

Every request looks its session up, so opening a connection per request would cost
more than the query. Connections are opened lazily up to ``size``; a broken one is
replaced on its next use. (psycopg_pool is not a dependency; this is all we need.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from libs.contracts.errors import ServiceUnavailable

Connection = psycopg.AsyncConnection[dict[str, Any]]


class Pool:
    """Up to ``size`` autocommit connections with dict rows."""

    def __init__(self, dsn: str, size: int = 4, *, connect_timeout: int = 5) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(size)
        self._all: set[Connection] = set()
        self._closed = False

    async def _open(self) -> Connection:
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._dsn,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=self._connect_timeout,
            )
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(f"the gateway database is unreachable: {exc}") from None
        self._all.add(conn)
        return conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection for the block; returned to the pool afterwards (closed if broken)."""
        if self._closed:
            raise ServiceUnavailable("the gateway is stopping")
        async with self._slots:
            conn: Connection | None = None
            while not self._idle.empty():
                candidate = self._idle.get_nowait()
                if not candidate.closed and not candidate.broken:
                    conn = candidate
                    break
                self._all.discard(candidate)
            if conn is None:
                conn = await self._open()
            try:
                yield conn
            except psycopg.OperationalError as exc:
                raise ServiceUnavailable(f"the gateway database failed: {exc}") from None
            finally:
                if conn.closed or conn.broken or self._closed:
                    self._all.discard(conn)
                    await conn.close()
                else:
                    self._idle.put_nowait(conn)

    async def check(self) -> None:
        """One round trip (for /health)."""
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    async def close(self) -> None:
        """Close every connection (in use ones close when returned)."""
        self._closed = True
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            self._all.discard(conn)
            await conn.close()
