"""Gateway WebSocket fan-out: quotes from the bus to 100 clients, publish -> receipt.

    .venv/bin/python bench/gateway.py [--seconds 30] [--clients 100] [--per-client 20]

Starts its own nats-server and PostgreSQL (embedded, temporary), then the gateway as a
process of its own (``python -m services.gateway``), so its event loop is not shared
with the clients'. This process plays market data: it answers ``WatchSymbols`` (the
gateway leases what its clients subscribe) and publishes ``QuoteReceived`` for 200
symbols (10 underlyings, 190 OCC option legs) on ``senex.md.<symbol>.QuoteReceived``
through JetStream, as market data does, at 1,000 quotes/s. 100 WebSocket clients (10
users, 10 sessions each) subscribe to 20 symbols each, so every symbol has 10 watchers.

Quotes come in bursts, as they do when a price moves: each symbol gets 12 quotes 20 ms
apart every 2.4 s (phases spread evenly over the symbols, 1,000/s in total). Per client
and symbol that makes every window hold both kinds the throttle sends: the first quote
(sent at once, ``held: false``) and the latest of the burst (sent at the window's end,
``held: true``). Latency is publish (``quoted_at`` is stamped just before the publish)
-> receipt by the client, reported per kind; the spacing between two messages of one
symbol on one connection checks the 1/s bound.

Writes ``bench/results/gateway.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2  # after the path set-up
import orjson
from cryptography.fernet import Fernet

from bench.common import quote
from libs.contracts.commands import Command, WatchReply, WatchSymbols
from libs.contracts.market import QuoteReceived
from libs.contracts.symbols import OccSymbol, OptionType
from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.servers import EmbeddedNats, EmbeddedPostgres, free_port
from services.gateway.db import Pool
from services.gateway.users import UserStore

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gateway.json"
PASSWORD = "bench password 1"  # noqa: S105 - the throwaway users of this run
UNDERLYINGS = ("QQQ", "SPY", "IWM", "DIA", "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META")
USERS = 10
#: The burst pattern: quotes per burst, gap inside a burst, period of the bursts.
BURST = 12
BURST_GAP_S = 0.020
PERIOD_S = 2.4
TICK_S = 0.005


def symbols(count: int = 200) -> list[str]:
    """``count`` symbols: the underlyings, then puts and calls of QQQ and SPY."""
    out = list(UNDERLYINGS)
    expiration = date(2027, 1, 15)
    strike = 500
    while len(out) < count:
        root = "QQQ" if len(out) % 2 else "SPY"
        kind = OptionType.PUT if len(out) % 4 < 2 else OptionType.CALL
        out.append(str(OccSymbol.build(root, expiration, kind, Decimal(strike))))
        strike += 1
    return out[:count]


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _summary(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50_ms": round(_percentile(ordered, 0.50), 2),
        "p90_ms": round(_percentile(ordered, 0.90), 2),
        "p99_ms": round(_percentile(ordered, 0.99), 2),
        "max_ms": round(ordered[-1], 2) if ordered else float("nan"),
        "mean_ms": round(statistics.fmean(ordered), 2) if ordered else float("nan"),
    }


class Client:
    """One WebSocket client: records latency and spacing per delivered quote."""

    def __init__(self, index: int, wanted: list[str]) -> None:
        self.index = index
        self.wanted = wanted
        self.at_once: list[float] = []
        self.held: list[float] = []
        self.spacing: list[float] = []
        self.last_seen: dict[str, float] = {}
        self.errors: list[str] = []
        self.ready = asyncio.Event()
        self.recording = False

    async def run(self, url: str, user: str, stop: asyncio.Event) -> None:
        async with httpx2.AsyncClient(base_url=url, trust_env=False, timeout=30) as http:
            login = await http.post(
                "/api/auth/login", json={"username": user, "password": PASSWORD}
            )
            login.raise_for_status()
            async with http.websocket(
                f"{url}/ws", keepalive_ping_interval_seconds=None, queue_size=4096
            ) as ws:
                await ws.send_text(
                    orjson.dumps({"type": "subscribe_quotes", "symbols": self.wanted}).decode()
                )
                while not stop.is_set():
                    try:
                        text = await ws.receive_text(timeout=0.5)
                    except TimeoutError:
                        continue
                    received = time.time()
                    message = orjson.loads(text)
                    kind = message["type"]
                    if kind == "subscribed":
                        self.ready.set()
                    elif kind == "quote_update":
                        self._quote(message, received)
                    elif kind == "error":
                        self.errors.append(message["message"])

    def _quote(self, message: dict[str, Any], received: float) -> None:
        if not self.recording:
            return
        published = datetime.fromisoformat(message["quoted_at"]).timestamp()
        latency_ms = (received - published) * 1000
        (self.held if message["held"] else self.at_once).append(latency_ms)
        symbol = message["symbol"]
        previous = self.last_seen.get(symbol)
        if previous is not None:
            self.spacing.append((received - previous) * 1000)
        self.last_seen[symbol] = received


async def serve_leases(bus: Bus, leased: set[str]) -> None:
    """Answer WatchSymbols as market data would (every symbol here is streamed anyway)."""

    async def watch(command: Command) -> WatchReply:
        assert isinstance(command, WatchSymbols)
        leased.update(command.symbols)
        until = datetime.now(UTC) + timedelta(seconds=command.lease_seconds)
        return WatchReply(symbols=command.symbols, watched_until=until)

    await bus.serve("market_data", {WatchSymbols.VERB: watch})


async def publish(bus: Bus, all_symbols: list[str], seconds: float) -> tuple[int, float]:
    """The burst schedule for ``seconds``; quotes published and the worst tick lag (ms)."""
    schedule = sorted(
        (i * PERIOD_S / len(all_symbols) + j * BURST_GAP_S, symbol)
        for i, symbol in enumerate(all_symbols)
        for j in range(BURST)
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    worst_lag = 0.0
    position = 0
    period = 0
    price = {symbol: Decimal("1.00") for symbol in all_symbols}
    while loop.time() - started < seconds:
        tick_end = loop.time() - started + TICK_S
        due: list[QuoteReceived] = []
        while True:
            offset, symbol = schedule[position]
            at = period * PERIOD_S + offset
            if at > tick_end:
                break
            worst_lag = max(worst_lag, (loop.time() - started - at) * 1000)
            price[symbol] += Decimal("0.01")
            now = datetime.now(UTC)
            due.append(quote(symbol, price[symbol], now))
            position += 1
            if position == len(schedule):
                position = 0
                period += 1
        if due:
            await bus.publish_many(due)
            sent += len(due)
        await asyncio.sleep(max(0.0, started + tick_end - loop.time()))
    return sent, worst_lag


async def wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    async with httpx2.AsyncClient(trust_env=False, timeout=2) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode}")
            with contextlib.suppress(httpx2.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not become healthy")


def _workdir() -> Path:
    work = Path(tempfile.mkdtemp(prefix="senex-bench-gw-"))
    work.chmod(0o755)  # PostgreSQL runs as an unprivileged user when we are root
    return work


def start_gateway(work: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m services.gateway``, logging to ``work/gateway.log``."""
    log = (work / "gateway.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "services.gateway"], cwd=ROOT, env=env, stdout=log, stderr=log
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = _workdir()
    nats = EmbeddedNats(work / "nats")
    pg = EmbeddedPostgres(work / "pg", durable=False)
    proc: subprocess.Popen[bytes] | None = None
    bus: Bus | None = None
    try:
        nats.start()
        pg.start()
        dsn = pg.create_database("bench")
        await migrate(dsn)
        pool = Pool(dsn, 2)
        try:
            for u in range(USERS):
                await UserStore(pool).create(f"user{u}", PASSWORD)
        finally:
            await pool.close()

        bus = await Bus.connect(nats.url, "bench-gateway")
        leased: set[str] = set()
        await serve_leases(bus, leased)

        port, metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "SENEX_NATS_URL": nats.url,
            "SENEX_DATABASE_URL": dsn,
            "SENEX_MODE": "paper",
            "SENEX_GATEWAY_PORT": str(port),
            "SENEX_METRICS_PORT": str(metrics_port),
            "SENEX_GATEWAY_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
            "SENEX_GATEWAY_LOGIN_ATTEMPTS_PER_USER": "100000",
            "SENEX_BROKER_VAULT_KEY": Fernet.generate_key().decode(),
            "SENEX_LOG_LEVEL": "WARNING",
        }
        proc = start_gateway(work, env)
        await wait_healthy(metrics_port, proc)
        url = f"http://127.0.0.1:{port}"

        all_symbols = symbols(args.symbols)
        clients = [
            Client(
                i,
                [
                    all_symbols[(args.per_client * i + k) % len(all_symbols)]
                    for k in range(args.per_client)
                ],
            )
            for i in range(args.clients)
        ]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(url, f"user{c.index % USERS}", stop)) for c in clients]
        ready = asyncio.gather(*(c.ready.wait() for c in clients))
        await asyncio.wait_for(ready, timeout=60)
        for _ in range(100):  # every lease asked for (first request may race the subscribe)
            if set(all_symbols) <= leased:
                break
            await asyncio.sleep(0.05)

        # Warm-up: one period unrecorded, so every window has seen traffic once.
        await publish(bus, all_symbols, PERIOD_S)
        await asyncio.sleep(1.5)
        for c in clients:
            c.recording = True
        load_before = os.getloadavg()[0]
        sent, worst_lag = await publish(bus, all_symbols, args.seconds)
        await asyncio.sleep(1.5)  # the last windows end
        load_after = os.getloadavg()[0]
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [repr(r) for r in results if isinstance(r, BaseException)]

        at_once = [x for c in clients for x in c.at_once]
        held = [x for c in clients for x in c.held]
        spacing = sorted(x for c in clients for x in c.spacing)
        return {
            "benchmark": "gateway websocket quote fan-out",
            "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "load_1m_before": round(load_before, 2),
                "load_1m_after": round(load_after, 2),
            },
            "conditions": {
                "seconds": args.seconds,
                "symbols": len(all_symbols),
                "underlyings": len(UNDERLYINGS),
                "option_legs": len(all_symbols) - len(UNDERLYINGS),
                "clients": args.clients,
                "symbols_per_client": args.per_client,
                "users": USERS,
                "quotes_per_second_target": round(len(all_symbols) * BURST / PERIOD_S),
                "pattern": f"bursts of {BURST} quotes {BURST_GAP_S * 1000:.0f} ms apart "
                f"every {PERIOD_S} s per symbol",
                "gateway": "separate process (python -m services.gateway)",
                "publish": "JetStream (Bus.publish_many), quoted_at stamped before publish",
            },
            "published": sent,
            "published_per_second": round(sent / args.seconds, 1),
            "publisher_worst_lag_ms": round(worst_lag, 2),
            "delivered": len(at_once) + len(held),
            "first_of_window": _summary(at_once),
            "end_of_window": _summary(held),
            "min_spacing_same_symbol_ms": round(spacing[0], 2) if spacing else None,
            "client_errors": sorted({e for c in clients for e in c.errors})[:10],
            "client_failures": failures[:10],
        }
    finally:
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            if proc.poll() is None:
                proc.kill()
        if bus is not None:
            await bus.close()
        with contextlib.suppress(Exception):
            nats.stop()
        with contextlib.suppress(Exception):
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument("--symbols", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
