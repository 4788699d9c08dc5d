"""The whole system on one machine (``senex up`` / ``make run``), paper mode.

Uses NATS_URL / DATABASE_URL when they are set and reachable; otherwise starts the
embedded servers with their data under ``.senex/`` (kept between runs). Then applies
migrations, starts every service as its own process and supervises them: one that
exits unexpectedly stops the whole system with its name and exit code, because a
half-running trading system is worse than a stopped one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import psycopg

from libs.runtime.servers import (
    EmbeddedNats,
    EmbeddedPostgres,
    ServerProcess,
    port_is_free,
    wait_for_port,
)
from libs.runtime.settings import DEFAULT_METRICS_PORTS

#: Services in start order: the audit recorder first, so it records from the start.
SERVICES: tuple[str, ...] = (
    "audit",
    "market_data",
    "strategy",
    "risk",
    "execution",
    "position_monitor",
    "gateway",
)
#: The gateway's public port unless SENEX_GATEWAY_PORT says otherwise.
GATEWAY_PORT = 8000
#: The broker simulator's port: the broker adapter's default paper URL points here.
SIMULATOR_PORT = 8765
PREFERRED_NATS_PORT = 14222
PREFERRED_POSTGRES_PORT = 15432
DATABASE_NAME = "senex"
HEALTH_TIMEOUT_S = 60.0


class StartupError(RuntimeError):
    """The system could not be brought up; the message says which part and why."""


def nats_reachable(url: str, timeout_s: float = 2.0) -> bool:
    """True when something accepts TCP connections at the NATS URL."""
    parts = urlsplit(url)
    try:
        wait_for_port(parts.hostname or "127.0.0.1", parts.port or 4222, timeout_s)
    except Exception:  # unreachable in any way means "start our own"
        return False
    return True


def postgres_reachable(url: str, timeout_s: int = 2) -> bool:
    """True when a PostgreSQL session can be opened with ``url``."""
    try:
        with psycopg.connect(url, connect_timeout=timeout_s):
            return True
    except psycopg.Error:
        return False


def _port(preferred: int) -> int | None:
    return preferred if port_is_free(preferred) else None


@dataclass
class LocalSystem:
    """Servers and service processes of one ``senex up``."""

    root: Path
    say: Callable[[str], None] = print
    nats_url: str = ""
    database_url: str = ""
    servers: list[ServerProcess] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / ".senex"

    def start_servers(self) -> None:
        """Connect to the configured servers, or start embedded ones under ``.senex/``."""
        env_nats = os.environ.get("NATS_URL")
        if env_nats and nats_reachable(env_nats):
            self.nats_url = env_nats
            self.say(f"NATS        {env_nats} (from NATS_URL)")
        else:
            if env_nats:
                self.say(f"NATS_URL {env_nats} is unreachable: starting an embedded NATS")
            nats_server = EmbeddedNats(self.data_dir / "nats", port=_port(PREFERRED_NATS_PORT))
            nats_server.start()
            self.servers.append(nats_server)
            self.nats_url = nats_server.url
            self.say(f"NATS        {nats_server.url} (embedded, data in {nats_server.data_dir})")
        env_db = os.environ.get("DATABASE_URL")
        if env_db and postgres_reachable(env_db):
            self.database_url = env_db
            self.say(f"PostgreSQL  {env_db} (from DATABASE_URL)")
        else:
            if env_db:
                self.say(f"DATABASE_URL {env_db} is unreachable: starting an embedded PostgreSQL")
            pg = EmbeddedPostgres(self.data_dir / "postgres", port=_port(PREFERRED_POSTGRES_PORT))
            pg.start()
            self.servers.append(pg)
            self.database_url = pg.create_database(DATABASE_NAME)
            self.say(f"PostgreSQL  {self.database_url} (embedded, data in {pg.data_dir})")

    def migrate(self) -> None:
        """Apply the event-log migrations before any service starts."""
        from libs.eventlog.migrate import migrate_sync

        applied = migrate_sync(self.database_url)
        self.say(f"Migrations  {len(applied)} applied" if applied else "Migrations  up to date")

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as log_file:
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def start_simulator(self) -> None:
        """Start the broker simulator (paper mode's broker) with its state in .senex/sim."""
        if not port_is_free(SIMULATOR_PORT):
            raise StartupError(f"port {SIMULATOR_PORT} (the broker simulator's) is taken")
        env = {**os.environ, "SENEX_SIM_DATA_DIR": str(self.data_dir / "sim")}
        self._spawn("simulator", ["-m", "services.simulator", "--port", str(SIMULATOR_PORT)], env)
        url = f"http://127.0.0.1:{SIMULATOR_PORT}"
        self._wait_healthy("simulator", f"{url}/sim/health")
        self.say(
            f"{'simulator':<18} healthy   {url}   (paper broker; log .senex/logs/simulator.log)"
        )

    def start_services(self) -> None:
        """Start every service process and wait until each reports healthy."""
        env = {
            **os.environ,
            "NATS_URL": self.nats_url,
            "DATABASE_URL": self.database_url,
            "SENEX_MODE": "paper",
            "SENEX_BROKER_SIMULATOR_URL": f"http://127.0.0.1:{SIMULATOR_PORT}",
            "SENEX_SIMULATOR_URL": f"http://127.0.0.1:{SIMULATOR_PORT}",
        }
        for name in SERVICES:
            self._spawn(name, ["-m", f"services.{name}"], env)
        for name in SERVICES:
            port = DEFAULT_METRICS_PORTS[name]
            self._wait_healthy(name, f"http://127.0.0.1:{port}/health")
            self.say(f"{name:<18} healthy   http://127.0.0.1:{port}/health")
        gateway_port = env.get("SENEX_GATEWAY_PORT", str(GATEWAY_PORT))
        self.say(f"Senex API   http://127.0.0.1:{gateway_port}/  (OpenAPI: /openapi.json)")

    def _wait_healthy(self, name: str, url: str) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            code = self.processes[name].poll()
            if code is not None:
                raise StartupError(f"{name} exited with code {code} during start-up")
            try:
                # Loopback http URLs built in this module, never user input.
                with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StartupError(f"{name} did not report healthy at {url}")
            time.sleep(0.2)

    def supervise(self, stop: Callable[[], bool]) -> int:
        """Block until ``stop()`` or a service dies; return the exit code for the CLI."""
        while not stop():
            for name, proc in self.processes.items():
                code = proc.poll()
                if code is not None:
                    self.say(f"{name} exited unexpectedly with code {code}: stopping the system")
                    return 1
            time.sleep(0.5)
        return 0

    def shutdown(self) -> None:
        """SIGTERM every service, wait for each, then stop the servers we started."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.processes.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.say(f"{name} ignored SIGTERM for 20 s: killing it")
                proc.kill()
                proc.wait()
        for server in reversed(self.servers):
            server.stop()
        self.processes.clear()
        self.servers.clear()


def run_local_system(root: Path) -> int:
    """Bring the system up, stay up until Ctrl-C/SIGTERM, bring it down; return exit code."""
    stop_flag = {"stop": False}

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_flag["stop"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    system = LocalSystem(root=root)
    try:
        system.start_servers()
        system.migrate()
        system.start_simulator()
        system.start_services()
        system.say("Senex is up (paper mode). Press Ctrl-C to stop.")
        code = system.supervise(lambda: stop_flag["stop"])
    except StartupError as exc:
        system.say(f"start-up failed: {exc}")
        code = 1
    finally:
        system.say("stopping...")
        system.shutdown()
        system.say("stopped.")
    return code
