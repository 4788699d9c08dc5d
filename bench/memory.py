"""Memory of every service process under 1,000 quotes/s, sampled every minute.

    .venv/bin/python bench/memory.py [--minutes 30] [--rate 1000] [--sample-s 60]

Starts its own nats-server and PostgreSQL (embedded, temporary), the broker simulator
as a process (``python -m services.simulator``, clock running at 60x so prices move and
DXLink pushes quotes), links the simulator's default customer, and every service as its
own process (audit, market_data, strategy, risk, execution, position_monitor, gateway).
This process publishes ``QuoteReceived`` for 200 symbols on the market stream
(``senex.md.<symbol>.QuoteReceived``, JetStream, ``Bus.publish_many``) at ``--rate``
quotes/s, on top of what market data streams from the simulator. Every ``--sample-s``
it reads each process's resident set size (``/proc/<pid>/status`` VmRSS) and reports,
per service, the first sample after a one-sample warm-up, the last, the peak and the
growth (last - first, MiB and MiB per hour). The issue asks for 30 minutes; a shorter
``--minutes`` is recorded as such in the JSON.

Writes ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2  # after the path set-up
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bench.common import machine, quote
from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault
from libs.contracts.symbols import OccSymbol, OptionType
from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.local_system import SERVICES
from libs.runtime.servers import EmbeddedNats, EmbeddedPostgres, free_port
from libs.runtime.settings import TradingMode
from services.gateway.accounts import Accounts, SettingsStore
from services.gateway.db import Pool
from services.gateway.users import UserStore
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "memory.json"
START = "2025-06-03T10:00:00-04:00"


def symbols(count: int = 200) -> list[str]:
    """``count`` symbols: QQQ and SPY, then puts and calls of both (as bench/gateway.py)."""
    out = ["QQQ", "SPY"]
    strike = 500
    while len(out) < count:
        root = "QQQ" if len(out) % 2 else "SPY"
        kind = OptionType.PUT if len(out) % 4 < 2 else OptionType.CALL
        out.append(str(OccSymbol.build(root, date(2027, 1, 15), kind, Decimal(strike))))
        strike += 1
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], work: Path) -> None:
        self.name = name
        self.out: IO[bytes] = (work / f"{name}.log").open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=self.out, stderr=self.out
        )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.out.close()


async def wait_healthy(url: str, proc: Proc) -> None:
    async with httpx2.AsyncClient(trust_env=False, timeout=2) as http:
        for _ in range(600):
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}")
            with contextlib.suppress(httpx2.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not become healthy")


async def link(dsn: str, bus: Bus, sim_url: str, key: bytes) -> None:
    settings = BrokerSettings(
        mode=TradingMode.PAPER, simulator_url=sim_url, vault_key=SecretStr(key.decode())
    )
    pool = Pool(dsn, 1)
    try:
        await UserStore(pool).create("bench", "bench password 1")
        accounts = Accounts(
            vault=await CredentialsVault.open(dsn, settings),
            settings_store=SettingsStore(pool),
            broker_settings=settings,
            publish=bus.publish,
            system_mode=TradingMode.PAPER,
        )
        await accounts.link(
            user_id="bench",
            credentials=BrokerCredentials(
                client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
                refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
            ),
            account_number=DEFAULT_ACCOUNT_NUMBER,
            nickname=None,
            now=datetime.fromisoformat(START),
        )
    finally:
        await pool.close()


async def publish_quotes(bus: Bus, rate: int, stop: asyncio.Event) -> int:
    """``rate`` QuoteReceived per second over 200 symbols, in 10 ms batches."""
    names = symbols(200)
    per_tick = max(1, rate // 100)
    price = {s: Decimal("100.00") for s in names}
    sent, index = 0, 0
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while not stop.is_set():
        now = datetime.now(UTC)
        batch = []
        for _ in range(per_tick):
            symbol = names[index % len(names)]
            index += 1
            price[symbol] += Decimal("0.01") if index % 3 else Decimal("-0.02")
            batch.append(quote(symbol, price[symbol], now))
        await bus.publish_many(batch)
        sent += len(batch)
        next_tick += 0.01
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
    return sent


def _workdir() -> Path:
    work = Path(tempfile.mkdtemp(prefix="senex-bench-mem-"))
    work.chmod(0o755)  # PostgreSQL runs as an unprivileged user when we are root
    return work


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = _workdir()
    nats_server = EmbeddedNats(work / "nats")
    pg = EmbeddedPostgres(work / "pg", durable=False)
    procs: dict[str, Proc] = {}
    bus: Bus | None = None
    stop = asyncio.Event()
    try:
        nats_server.start()
        pg.start()
        dsn = pg.create_database("senex")
        await migrate(dsn)
        sim_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        env = {**os.environ, "SENEX_SIM_DATA_DIR": str(work / "sim"), "SENEX_LOG_LEVEL": "WARNING"}
        sim = Proc(
            "simulator",
            [
                "-m",
                "services.simulator",
                "--port",
                str(sim_port),
                "--start",
                START,
                "--speed",
                "60",
            ],
            env,
            work,
        )
        procs["simulator"] = sim
        await wait_healthy(f"{sim_url}/sim/health", sim)
        bus = await Bus.connect(nats_server.url, "bench-memory")
        key = Fernet.generate_key()
        await link(dsn, bus, sim_url, key)
        service_env = {
            **env,
            "NATS_URL": nats_server.url,
            "DATABASE_URL": dsn,
            "SENEX_MODE": "paper",
            "SENEX_SIMULATOR_URL": sim_url,
            "SENEX_BROKER_SIMULATOR_URL": sim_url,
            "SENEX_BROKER_VAULT_KEY": key.decode(),
            "SENEX_SMTP_ENABLED": "false",
            "SENEX_GATEWAY_PORT": str(free_port()),
        }
        ports = {}
        for name in SERVICES:
            ports[name] = free_port()
            procs[name] = Proc(
                name,
                ["-m", f"services.{name}"],
                {**service_env, "SENEX_METRICS_PORT": str(ports[name])},
                work,
            )
        for name in SERVICES:
            await wait_healthy(f"http://127.0.0.1:{ports[name]}/health", procs[name])
        publisher = asyncio.create_task(publish_quotes(bus, args.rate, stop))
        samples: dict[str, list[float]] = {name: [] for name in procs}
        started = time.monotonic()
        total = args.minutes * 60
        while True:
            for name, proc in procs.items():
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.popen.returncode}")
                samples[name].append(round(rss_mib(proc.popen.pid), 1))
            print(
                f"t={time.monotonic() - started:6.0f}s "
                + " ".join(f"{n}={v[-1]:.0f}" for n, v in samples.items()),
                flush=True,
            )
            if time.monotonic() - started >= total:
                break
            await asyncio.sleep(min(args.sample_s, max(0.0, total - (time.monotonic() - started))))
        elapsed = time.monotonic() - started
        stop.set()
        sent = await publisher
    finally:
        stop.set()
        for proc in reversed(list(procs.values())):
            proc.stop()
        if bus is not None:
            await bus.close()
        pg.stop()
        nats_server.stop()
        shutil.rmtree(work, ignore_errors=True)
    hours = elapsed / 3600
    per_service = {}
    for name, values in samples.items():
        base = values[1] if len(values) > 2 else values[0]  # one-sample warm-up
        per_service[name] = {
            "first_mib": base,
            "last_mib": values[-1],
            "peak_mib": max(values),
            "growth_mib": round(values[-1] - base, 1),
            "growth_mib_per_hour": round((values[-1] - base) / hours, 1) if hours else None,
            "samples_mib": values,
        }
    return {
        "benchmark": "memory",
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "conditions": {
            "minutes_asked": args.minutes,
            "minutes_run": round(elapsed / 60, 1),
            "shortened": args.minutes < 30,
            "rate_quotes_per_s": args.rate,
            "quotes_published": sent,
            "achieved_quotes_per_s": round(sent / elapsed, 1),
            "sample_s": args.sample_s,
            "simulator_speed": 60,
        },
        "services": per_service,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--sample-s", type=float, default=60.0)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    summary = {
        n: {k: v for k, v in s.items() if k != "samples_mib"} for n, s in result["services"].items()
    }
    print(json.dumps({"conditions": result["conditions"], "services": summary}, indent=2))


if __name__ == "__main__":
    main()
