"""The test servers are real, reachable, and survive kill/restart with their data."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import psycopg

from libs.runtime.servers import PostgresProcess, ServerProcess


def test_postgres_database_per_module_is_reachable(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT current_database(), current_setting('server_version_num')")
        name, version = row.fetchone() or ("", "0")
    assert name.startswith("t_")
    assert int(version) >= 150000


def test_postgres_keeps_committed_data_across_a_kill(
    postgres_factory: Callable[[], PostgresProcess],
) -> None:
    server = postgres_factory()
    url = server.create_database("crash")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (42)")
    server.kill()
    server.start()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(42,)]


def test_jetstream_keeps_messages_across_a_kill(nats_factory: Callable[[], ServerProcess]) -> None:
    server = nats_factory()

    async def publish() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        await js.publish("s.a", b"kept")
        await nc.close()

    async def read() -> bytes:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        msg = await js.get_last_msg("S", "s.a")
        await nc.close()
        return msg.data or b""

    asyncio.run(publish())
    server.kill()
    server.start()
    assert asyncio.run(read()) == b"kept"
