"""Event-log throughput: the real recorder and replay against a bare baseline, same run.

    python bench/eventlog.py [--events N] [--batch B]

Starts its own nats-server and PostgreSQL (embedded, temporary), then measures:

* ``recorded_events_per_s``: publish (pipelined, this process) -> committed in
  PostgreSQL, end to end through the real audit service (``python -m services.audit``,
  its own process as in production);
* ``replayed_events_per_s``: read the account's log and fold it into every projection,
  through `senex replay`'s library function (`libs.cli.replay.replay_account`);
* the same two figures for a bare baseline with no project code: nats-py pipelined
  publish (this process) + pull consumer and COPY into a plain table (its own process),
  and a raw read + orjson fold;
* their ratios. Prints the figures and writes ``bench/results/eventlog.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402 - after the path set-up, for `python bench/eventlog.py`
import orjson  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from nats.js import api  # noqa: E402

from libs.cli.replay import replay_account  # noqa: E402
from libs.contracts.envelope import Event, new_event_id  # noqa: E402
from libs.contracts.errors import ErrorKind  # noqa: E402
from libs.contracts.registry import encode_event  # noqa: E402
from libs.contracts.system import TradingSuspended  # noqa: E402
from libs.eventlog.migrate import migrate  # noqa: E402
from libs.runtime.bus import Bus  # noqa: E402
from libs.runtime.servers import EmbeddedNats, EmbeddedPostgres, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "eventlog.json"
ACCOUNT = "5WT00001"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def make_events(n: int, mix: str = "realistic") -> list[Event]:
    """``n`` valid business events of one account.

    ``realistic``: an account's trading life (suggestions with their quotes, risk
    checks, orders and fills, positions and valuations; tests/integration/replay's
    scenario, repeated). ``small``: one small event type that no projection folds.
    """
    if mix == "realistic":
        from tests.integration.replay.scenario import account_history

        events: list[Event] = []
        while len(events) < n:
            events += account_history(ACCOUNT, close_all=True)
        return events[:n]
    return [
        TradingSuspended(
            occurred_at=START + timedelta(milliseconds=i),
            producer="bench",
            account_id=ACCOUNT,
            correlation_id=new_event_id(),
            reason=ErrorKind.BROKER_UNAVAILABLE,
            message=f"broker unreachable #{i}",
        )
        for i in range(n)
    ]


async def max_position(dsn: str, table: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(f"SELECT coalesce(max(position), 0) FROM {table}")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def wait_position(dsn: str, table: str, n: int) -> None:
    """Poll (cheaply, every 10 ms) until ``table`` holds position ``n``."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            cur = await conn.execute(f"SELECT 1 FROM {table} WHERE position = %s", (n,))
            if await cur.fetchone():
                return
            await asyncio.sleep(0.01)


class CpuMeter:
    """CPU seconds spent by each part of the pipeline between `start` and `stop`.

    On a 2-core machine every part competes for the same cores, so the per-event CPU
    of each part explains an end-to-end rate better than the rate alone.
    """

    def __init__(self, parts: dict[str, int | None], with_children: frozenset[str]) -> None:
        self._pids = {name: pid for name, pid in parts.items() if pid is not None}
        self._with_children = with_children
        self._start: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, pid in self._pids.items():
            try:
                root = psutil.Process(pid)
                procs = [root]
                if name in self._with_children:
                    procs += root.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            total = 0.0
            for proc in procs:
                try:
                    times = proc.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
            if name in self._with_children:
                # Children that exited (and were reaped) since: their time is the root's.
                own = root.cpu_times()
                total += own.children_user + own.children_system
            totals[name] = total
        return totals

    def start(self) -> None:
        self._start = self._sample()

    def stop(self, events: int) -> dict[str, float]:
        """Microseconds of CPU per event, by part."""
        end = self._sample()
        return {
            name: round((end[name] - self._start.get(name, 0.0)) / events * 1e6, 1) for name in end
        }


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the project's path -------------------------------------------------------------


async def project_record(
    servers: Servers, dsn: str, events: Sequence[Event], batch: int, work: Path
) -> tuple[float, dict[str, float]]:
    """Seconds from the first publish to the last row committed by the real recorder.

    The recorder runs as the real audit service process, as in production; the
    publisher is this process.
    """
    nats_url = servers.nats.url
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "DATABASE_URL": dsn,
        "SENEX_METRICS_PORT": str(free_port()),
        "SENEX_LOG_LEVEL": "WARNING",
        "SENEX_AUDIT_BATCH_SIZE": str(batch),
    }
    publisher = await Bus.connect(nats_url, "bench-publisher")
    audit = spawn(["-m", "services.audit"], env, work / "audit.log")
    try:
        await wait_health(env["SENEX_METRICS_PORT"], audit)
        meter = servers.meter(audit.pid)
        meter.start()
        started = time.perf_counter()
        await publisher.publish_many(events, timeout=600)
        await wait_position(dsn, "events", len(events))
        elapsed = time.perf_counter() - started
        cpu = meter.stop(len(events))
    finally:
        stop(audit)
        await publisher.close()
    return elapsed, cpu


async def wait_health(port: str, proc: subprocess.Popen[bytes]) -> None:
    url = f"http://127.0.0.1:{port}/health"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"audit service exited with {proc.returncode}")
        try:
            if await asyncio.to_thread(_status, url) == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return int(reply.status)


async def project_replay(dsn: str) -> tuple[float, int]:
    """Seconds to read and fold the account's log through `senex replay`'s path."""
    started = time.perf_counter()
    result = await replay_account(dsn, ACCOUNT, None)
    return time.perf_counter() - started, result.events_folded + result.events_ignored


# --- the bare baseline (no project code) --------------------------------------------


async def bare_consume(nats_url: str, dsn: str, n: int, batch: int) -> None:
    """The baseline's consumer process: pull consumer + COPY, ack after commit."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind(durable="bare", stream="BARE")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        stored = 0
        while stored < n:
            try:
                msgs = await sub.fetch(batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            async with conn.cursor() as cur:
                copy_sql = "COPY bare (position, event_id, payload) FROM STDIN"
                async with cur.copy(copy_sql) as copy:
                    for msg in msgs:
                        msg_id = msg.headers.get("Nats-Msg-Id", "") if msg.headers else ""
                        seq = msg.metadata.sequence.stream
                        await copy.write_row((seq, msg_id, msg.data.decode()))
            await msgs[-1].ack()
            stored += len(msgs)
        # Stay (connection open) until the benchmark stops us, so its CPU meter still
        # finds this process and its database backend when it takes the last sample.
        await asyncio.Event().wait()


async def bare_record(
    servers: Servers, dsn: str, payloads: Sequence[bytes], batch: int, work: Path
) -> tuple[float, dict[str, float]]:
    """nats-py pipelined publish here + pull consumer and COPY in another process."""
    nats_url = servers.nats.url
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name="BARE", subjects=["bare.>"])
    await js.add_consumer(
        "BARE",
        api.ConsumerConfig(durable_name="bare", ack_policy=api.AckPolicy.ALL, max_ack_pending=-1),
    )
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE bare (position bigint PRIMARY KEY, event_id text, payload jsonb)"
        )
    args = [__file__, "--bare-consumer", nats_url, dsn, str(len(payloads)), str(batch)]
    consumer = spawn(args, dict(os.environ), work / "bare.log")
    try:
        meter = servers.meter(consumer.pid)
        meter.start()
        started = time.perf_counter()
        for i, payload in enumerate(payloads):
            await js.publish_async(f"bare.{ACCOUNT}", payload, headers={"Nats-Msg-Id": str(i)})
        await js.publish_async_completed()
        await wait_position(dsn, "bare", len(payloads))
        elapsed = time.perf_counter() - started
        cpu = meter.stop(len(payloads))
    finally:
        stop(consumer)
        await nc.close()
    return elapsed, cpu


async def bare_replay(dsn: str) -> tuple[float, int]:
    """Raw read of the recorded payloads + orjson fold (counts by type)."""
    started = time.perf_counter()
    counts: Counter[str] = Counter()
    async with (
        await psycopg.AsyncConnection.connect(dsn) as conn,
        conn.cursor(name="bare_read") as cur,
    ):
        cur.itersize = 5000
        await cur.execute("SELECT payload::text FROM bare ORDER BY position")
        async for (text,) in cur:
            counts[orjson.loads(text)["type"]] += 1
    return time.perf_counter() - started, sum(counts.values())


def _work_dir() -> Path:
    # Readable by the unprivileged user PostgreSQL runs as when we are root.
    work = Path(tempfile.mkdtemp(prefix="senex-bench-"))
    work.chmod(0o755)
    return work


class Servers:
    """The benchmark's own NATS and PostgreSQL."""

    def __init__(self, work: Path) -> None:
        self.nats = EmbeddedNats(work / "nats")
        self.pg = EmbeddedPostgres(work / "pg", durable=True)

    def meter(self, consumer_pid: int) -> CpuMeter:
        return CpuMeter(
            {
                "publisher": os.getpid(),
                "consumer": consumer_pid,
                "nats_server": self.nats.pid,
                "postgres": self.pg.pid,
            },
            # PostgreSQL works in the postmaster's children (one backend per session).
            with_children=frozenset({"postgres"}),
        )


async def run(n: int, batch: int, mix: str) -> dict[str, Any]:
    work = _work_dir()
    servers = Servers(work)
    nats_server, pg = servers.nats, servers.pg
    nats_server.start()
    pg.start()
    try:
        dsn = pg.create_database("bench")
        await migrate(dsn)
        events = make_events(n, mix)
        payloads = [encode_event(e) for e in events]
        # A real publisher holds a handful of events, not 100,000 models: keep the
        # garbage collector from re-walking this pre-built workload on every full pass
        # (it did, and it doubled the publisher's CPU per event).
        gc.freeze()
        recorded_s, recorded_cpu = await project_record(servers, dsn, events, batch, work)
        replay_s, folded = await project_replay(dsn)
        bare_rec_s, bare_cpu = await bare_record(servers, dsn, payloads, batch, work)
        bare_rep_s, bare_folded = await bare_replay(dsn)
        assert folded == n, f"replay folded {folded} of {n}"
        assert bare_folded == n
    finally:
        nats_server.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    recorded = n / recorded_s
    replayed = n / replay_s
    bare_recorded = n / bare_rec_s
    bare_replayed = n / bare_rep_s
    return {
        "events": n,
        "batch": batch,
        "mix": mix,
        "mean_event_bytes": round(sum(map(len, payloads)) / len(payloads)),
        "recorded_events_per_s": round(recorded),
        "replayed_events_per_s": round(replayed),
        "baseline_recorded_events_per_s": round(bare_recorded),
        "baseline_replayed_events_per_s": round(bare_replayed),
        "recorded_ratio": round(recorded / bare_recorded, 3),
        "recorded_cpu_us_per_event": recorded_cpu,
        "baseline_recorded_cpu_us_per_event": bare_cpu,
        "replayed_ratio": round(replayed / bare_replayed, 3),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _cpus() -> int:
    return os.cpu_count() or 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--mix", choices=("realistic", "small"), default="realistic")
    parser.add_argument("--bare-consumer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_consumer:
        url, dsn, n, batch = args.bare_consumer
        asyncio.run(bare_consume(url, dsn, int(n), int(batch)))
        return 0
    result = asyncio.run(run(args.events, args.batch, args.mix))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = RESULTS if args.mix == "realistic" else RESULTS.with_name("eventlog-small.json")
    results.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:34} {value}")
    print(f"written to {results.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
