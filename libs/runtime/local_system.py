"""The whole system on one machine (``senex up`` / ``make run``).

Uses NATS_URL / DATABASE_URL when they are set and reachable; otherwise starts the
embedded servers with their data under ``.senex/`` (kept between runs). Then applies
migrations, starts the broker simulator (paper mode) and every service as its own
child process, and supervises them: a process that dies is restarted with backoff
(1 s doubling to 30 s, reset once it has run for a minute); after
``RestartPolicy.max_quick_crashes`` crashes in a row, each within a minute of its
start, the whole system stops with the service's name, because a service that cannot
stay up needs a person. Every line a child writes goes to ``.senex/logs/<name>.log``
and, prefixed with its name, to the console.

What runs is written to ``.senex/state.json`` (pids, health URLs, restarts) for
``senex status``; the file is removed when the system stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit

import psycopg

from libs.runtime.leases import default_replica_id
from libs.runtime.market_hours import NEW_YORK, is_market_open, next_open_after
from libs.runtime.servers import (
    EmbeddedNats,
    EmbeddedPostgres,
    ServerProcess,
    port_is_free,
    wait_for_port,
)
from libs.runtime.settings import DEFAULT_METRICS_PORTS, TradingMode

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
#: The first user when none exists and SENEX_FIRST_USER is unset.
DEFAULT_FIRST_USER = "trader"
STATE_FILE = "state.json"
#: Environment variables a child must not inherit: one value would make every service
#: bind the same port.
_NOT_INHERITED = ("SENEX_METRICS_PORT", "SENEX_REPLICA_ID")


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


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` answers 200."""
    try:
        # Loopback http URLs built by this module or read from its state file.
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def simulated_start(now: datetime, saved: datetime | None = None) -> datetime:
    """Where the simulated clock starts: ``now`` (or the saved clock when later) if the
    regular session is open then, else the next regular open.

    Never before a saved clock: the simulator's orders and the event log already hold
    times up to it, and business time must not run backwards.
    """
    base = max(now, saved) if saved is not None else now
    return base if is_market_open(base) else next_open_after(base)


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed child is started again, and when the supervisor gives up."""

    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    #: A process that ran this long before it died starts the backoff afresh.
    stable_after_s: float = 60.0
    #: Crashes in a row, each within ``stable_after_s`` of a start, before giving up.
    max_quick_crashes: int = 5

    def backoff(self, quick_crashes: int) -> float:
        """The wait before the next start after ``quick_crashes`` (>= 1) quick crashes."""
        return float(
            min(self.initial_backoff_s * 2 ** max(quick_crashes - 1, 0), self.max_backoff_s)
        )


@dataclass
class Child:
    """One supervised process: how to start it and how it has fared."""

    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_crashes: int = 0
    #: Monotonic time of the pending restart; None while running.
    restart_at: float | None = None
    pump: threading.Thread | None = None


@dataclass
class LocalSystem:
    """Servers and supervised child processes of one ``senex up``."""

    root: Path
    say: Callable[[str], None] = print
    mode: TradingMode = TradingMode.PAPER
    sim_start: datetime | None = None
    sim_speed: float | None = None
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    #: Whether child log lines are also written to the console (always to the files).
    echo_logs: bool = True
    nats_url: str = ""
    database_url: str = ""
    servers: list[ServerProcess] = field(default_factory=list)
    children: dict[str, Child] = field(default_factory=dict)
    clock_note: str = ""
    first_user_note: str = ""
    _console: threading.Lock = field(default_factory=threading.Lock)

    @property
    def data_dir(self) -> Path:
        return self.root / ".senex"

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def gateway_port(self) -> int:
        return int(os.environ.get("SENEX_GATEWAY_PORT", str(GATEWAY_PORT)))

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{SIMULATOR_PORT}"

    @property
    def vault_key_file(self) -> Path:
        configured = os.environ.get("SENEX_BROKER_VAULT_KEY_FILE")
        return Path(configured) if configured else self.data_dir / "vault.key"

    def show(self, line: str) -> None:
        """One console line (serialised with the children's prefixed lines)."""
        with self._console:
            self.say(line)

    # --- servers ------------------------------------------------------------------------

    def start_servers(self) -> None:
        """Connect to the configured servers, or start embedded ones under ``.senex/``."""
        env_nats = os.environ.get("NATS_URL")
        if env_nats and nats_reachable(env_nats):
            self.nats_url = env_nats
            self.show(f"NATS        {env_nats} (from NATS_URL)")
        else:
            if env_nats:
                self.show(f"NATS_URL {env_nats} is unreachable: starting an embedded NATS")
            nats_server = EmbeddedNats(self.data_dir / "nats", port=_port(PREFERRED_NATS_PORT))
            nats_server.start()
            self.servers.append(nats_server)
            self.nats_url = nats_server.url
            self.show(f"NATS        {nats_server.url} (embedded, data in {nats_server.data_dir})")
        env_db = os.environ.get("DATABASE_URL")
        if env_db and postgres_reachable(env_db):
            self.database_url = env_db
            self.show(f"PostgreSQL  {env_db} (from DATABASE_URL)")
        else:
            if env_db:
                self.show(f"DATABASE_URL {env_db} is unreachable: starting an embedded PostgreSQL")
            pg = EmbeddedPostgres(self.data_dir / "postgres", port=_port(PREFERRED_POSTGRES_PORT))
            pg.start()
            self.servers.append(pg)
            self.database_url = pg.create_database(DATABASE_NAME)
            self.show(f"PostgreSQL  {self.database_url} (embedded, data in {pg.data_dir})")

    def migrate(self) -> None:
        """Apply the event-log migrations before any service starts."""
        from libs.eventlog.migrate import migrate_sync

        applied = migrate_sync(self.database_url)
        self.show(f"Migrations  {len(applied)} applied" if applied else "Migrations  up to date")

    # --- children -----------------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env.update(
            NATS_URL=self.nats_url,
            DATABASE_URL=self.database_url,
            SENEX_MODE=self.mode.value,
            SENEX_BROKER_VAULT_KEY_FILE=str(self.vault_key_file),
            SENEX_SIM_DATA_DIR=str(self.data_dir / "sim"),
            # One id per supervisor, kept across a child's restarts: the supervisor
            # restarts a child only once it is dead, so the new process takes the old
            # one's partition leases back at once instead of waiting for them to expire.
            SENEX_REPLICA_ID=default_replica_id(),
        )
        if self.mode is TradingMode.PAPER:
            env["SENEX_BROKER_SIMULATOR_URL"] = self.simulator_url
            env["SENEX_SIMULATOR_URL"] = self.simulator_url
        else:
            # Live business time is the wall clock, never a simulator's.
            env.pop("SENEX_SIMULATOR_URL", None)
        # The console is for people; the files keep whatever format the console shows.
        env.setdefault("SENEX_LOG_FORMAT", "console")
        return env

    def _launch(self, child: Child) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, *child.args],
            cwd=self.root,
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the terminal reaches `senex up` only, which
            # then stops the children in order instead of all of them at once.
            start_new_session=True,
        )
        assert proc.stdout is not None
        log_file = (logs / f"{child.name}.log").open("ab")
        child.proc = proc
        child.started_at = time.monotonic()
        child.restart_at = None
        child.pump = threading.Thread(
            target=self._pump,
            args=(child.name, proc.stdout, log_file),
            name=f"log-{child.name}",
            daemon=True,
        )
        child.pump.start()
        self.write_state()

    def _pump(self, name: str, stream: IO[bytes], log_file: IO[bytes]) -> None:
        """Copy a child's output to its log file and, prefixed, to the console."""
        prefix = f"{name:<16}| "
        with stream, log_file:
            for raw in iter(stream.readline, b""):
                log_file.write(raw)
                log_file.flush()
                if self.echo_logs:
                    self.show(prefix + raw.decode(errors="replace").rstrip())

    def _add(self, name: str, args: list[str], health_url: str) -> Child:
        child = Child(name, args, self._child_env(), health_url)
        self.children[name] = child
        self._launch(child)
        return child

    def start_simulator(self) -> None:
        """Start the broker simulator (paper mode's broker) with its state in .senex/sim."""
        if not port_is_free(SIMULATOR_PORT):
            raise StartupError(f"port {SIMULATOR_PORT} (the broker simulator's) is taken")
        now = datetime.now(UTC)
        start = self.sim_start or simulated_start(now, self._saved_sim_clock())
        speed = 1.0 if self.sim_speed is None else self.sim_speed
        args = ["-m", "services.simulator", "--port", str(SIMULATOR_PORT)]
        args += ["--start", start.isoformat(), "--speed", repr(speed)]
        self._add("simulator", args, f"{self.simulator_url}/sim/health")
        self._wait_healthy(self.children["simulator"])
        simulated = abs((start - now).total_seconds()) > 5 or speed != 1.0
        shown = start.astimezone(NEW_YORK).strftime("%a %Y-%m-%d %H:%M New York")
        if simulated:
            why = "" if self.sim_start else " (the real market is closed: next regular open)"
            self.clock_note = f"SIMULATED time from {shown}{why}, speed {speed:g}"
        else:
            self.clock_note = f"real time ({shown}), speed 1"
        self.show(f"{'simulator':<18} healthy   {self.simulator_url}   (paper broker)")

    def _saved_sim_clock(self) -> datetime | None:
        """The clock a previous run of the simulator saved in .senex/sim, if any."""
        path = self.data_dir / "sim" / "sim.sqlite3"
        if not path.exists():
            return None
        from services.simulator.store import Store

        store = Store(path)
        try:
            saved = store.get_meta("clock")
        finally:
            store.close()
        return datetime.fromisoformat(saved["now"]) if saved else None

    def start_services(self) -> None:
        """Start every service process and wait until each reports healthy."""
        taken = [str(p) for n, p in DEFAULT_METRICS_PORTS.items() if not port_is_free(p)]
        if not port_is_free(self.gateway_port):
            taken.append(str(self.gateway_port))
        if taken:
            raise StartupError(f"ports already in use: {', '.join(taken)} (is Senex running?)")
        for name in SERVICES:
            port = DEFAULT_METRICS_PORTS[name]
            self._add(name, ["-m", f"services.{name}"], f"http://127.0.0.1:{port}/health")
        for name in SERVICES:
            self._wait_healthy(self.children[name])

    def _wait_healthy(self, child: Child) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while not http_ok(child.health_url):
            assert child.proc is not None
            code = child.proc.poll()
            if code is not None:
                raise StartupError(
                    f"{child.name} exited with code {code} during start-up "
                    f"(log: {self.data_dir / 'logs' / (child.name + '.log')})"
                )
            if time.monotonic() > deadline:
                raise StartupError(f"{child.name} did not report healthy at {child.health_url}")
            time.sleep(0.2)

    # --- first user ---------------------------------------------------------------------

    def ensure_first_user(self) -> None:
        """Create the first gateway user when there is none (paper: with its own account)."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM gateway_users").fetchone()
        if row is not None and row[0] > 0:
            self.first_user_note = "existing users (log in as one of them)"
            return
        from libs.broker.settings import BrokerSettings
        from libs.cli.user import create_user

        username = os.environ.get("SENEX_FIRST_USER") or DEFAULT_FIRST_USER
        configured = os.environ.get("SENEX_FIRST_PASSWORD")
        password = configured or secrets.token_urlsafe(12)
        paper = self.mode is TradingMode.PAPER
        broker = BrokerSettings(
            mode=self.mode, simulator_url=self.simulator_url, vault_key_file=self.vault_key_file
        )
        user_id, account = asyncio.run(
            create_user(
                username=username,
                password=password,
                database_url=self.database_url,
                nats_url=self.nats_url,
                link=paper,
                broker_settings=broker,
            )
        )
        # The random password is shown once, in the table, and stored nowhere in clear.
        shown = "(password from SENEX_FIRST_PASSWORD)" if configured else f"password {password}"
        linked = f", paper account {account}" if account else ""
        self.first_user_note = f"{user_id}, {shown}{linked}  (new user)"

    def check_live_links(self) -> None:
        """Live mode: say how to link a TastyTrade account when none is linked yet."""
        from libs.broker.settings import BrokerSettings
        from libs.broker.vault import CredentialsVault

        async def live_links() -> int:
            broker = BrokerSettings(mode=TradingMode.LIVE, vault_key_file=self.vault_key_file)
            vault = await CredentialsVault.open(self.database_url, broker)
            return sum(
                1 for link in await vault.links() if link.mode.value == TradingMode.LIVE.value
            )

        count = asyncio.run(live_links())
        if count:
            self.clock_note = f"live: {count} TastyTrade account(s) linked; real time"
        else:
            self.clock_note = (
                "live: no TastyTrade account linked yet; link one with "
                "`senex account link --user U --client-secret-stdin` (README: live mode)"
            )

    # --- reporting ----------------------------------------------------------------------

    def health_table(self) -> list[str]:
        """Every child's health, the URL, the clock and the first user, as table lines."""
        lines = [f"{'process':<18} {'pid':>7}  {'restarts':>8}  health"]
        for child in self.children.values():
            pid = child.proc.pid if child.proc is not None else 0
            state = "ok" if http_ok(child.health_url) else "NOT HEALTHY"
            lines.append(
                f"{child.name:<18} {pid:>7}  {child.restarts:>8}  {state}  {child.health_url}"
            )
        lines.append(f"Trading screen  http://127.0.0.1:{self.gateway_port}/trading/")
        lines.append(
            f"API             http://127.0.0.1:{self.gateway_port}/  (OpenAPI /openapi.json)"
        )
        lines.append(f"Mode            {self.mode.value}")
        if self.clock_note:
            lines.append(f"Clock           {self.clock_note}")
        if self.first_user_note:
            lines.append(f"User            {self.first_user_note}")
        lines.append(f"Logs            {self.data_dir / 'logs'}/<name>.log")
        return lines

    def write_state(self) -> None:
        """Record what runs for ``senex status`` (atomically: a reader never sees half)."""
        state: dict[str, Any] = {
            "pid": os.getpid(),
            "mode": self.mode.value,
            "nats_url": self.nats_url,
            "database_url": self.database_url,
            "gateway_url": f"http://127.0.0.1:{self.gateway_port}/trading/",
            "clock": self.clock_note,
            "processes": {
                c.name: {
                    "pid": c.proc.pid if c.proc is not None else None,
                    "health_url": c.health_url,
                    "restarts": c.restarts,
                }
                for c in self.children.values()
            },
            "servers": {
                ("nats" if isinstance(s, EmbeddedNats) else "postgres"): {
                    "url": s.url,
                    "pid": getattr(s, "pid", None),
                }
                for s in self.servers
            },
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_path)

    # --- supervision --------------------------------------------------------------------

    def supervise(self, stop: Callable[[], bool]) -> int:
        """Restart crashed children until ``stop()``; 1 when one keeps crashing."""
        while not stop():
            now = time.monotonic()
            for child in self.children.values():
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.restarts += 1
                        self.show(f"restarting {child.name} (restart {child.restarts})")
                        self._launch(child)
                    continue
                assert child.proc is not None
                code = child.proc.poll()
                if code is None:
                    if child.quick_crashes and now - child.started_at >= self.policy.stable_after_s:
                        child.quick_crashes = 0  # stable again: the next crash waits 1 s
                    continue
                ran = now - child.started_at
                child.quick_crashes = (
                    1 if ran >= self.policy.stable_after_s else child.quick_crashes + 1
                )
                if child.quick_crashes > self.policy.max_quick_crashes:
                    self.show(
                        f"{child.name} crashed {child.quick_crashes} times in a row, each "
                        f"within {self.policy.stable_after_s:g} s of starting (last exit code "
                        f"{code}): giving up and stopping the system. See "
                        f"{self.data_dir / 'logs' / (child.name + '.log')}"
                    )
                    return 1
                wait = self.policy.backoff(child.quick_crashes)
                self.show(
                    f"{child.name} exited with code {code} after {ran:.1f} s: "
                    f"restarting in {wait:g} s"
                )
                child.restart_at = now + wait
            time.sleep(0.2)
        return 0

    def shutdown(self) -> None:
        """SIGTERM every child (gateway first), wait for each, then stop our servers."""
        running = [c for c in reversed(list(self.children.values())) if c.proc is not None]
        for child in running:
            assert child.proc is not None
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.show(f"{child.name} ignored SIGTERM for 20 s: killing it")
                child.proc.kill()
                child.proc.wait()
            if child.pump is not None:
                child.pump.join(timeout=5)
        for server in reversed(self.servers):
            server.stop()
        self.children.clear()
        self.servers.clear()
        self.state_path.unlink(missing_ok=True)


def run_local_system(
    root: Path,
    *,
    sim_start: datetime | None = None,
    sim_speed: float | None = None,
    echo_logs: bool = True,
    policy: RestartPolicy | None = None,
) -> int:
    """Bring the system up, stay up until Ctrl-C/SIGTERM, bring it down; return exit code."""
    from libs.runtime.settings import Settings

    stop_flag = {"stop": False}

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_flag["stop"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    mode = Settings().mode
    system = LocalSystem(
        root=root,
        mode=mode,
        sim_start=sim_start,
        sim_speed=sim_speed,
        echo_logs=echo_logs,
        policy=policy or RestartPolicy(),
    )
    try:
        system.start_servers()
        system.migrate()
        if mode is TradingMode.PAPER:
            system.start_simulator()
        else:
            system.check_live_links()
        system.start_services()
        try:
            system.ensure_first_user()
        except Exception as exc:  # the system runs anyway; `senex user create` can do it
            system.show(
                f"first user not created ({type(exc).__name__}: {exc}); "
                "create one with `senex user create`"
            )
        system.write_state()
        for line in system.health_table():
            system.show(line)
        system.show(f"Senex is up ({mode.value} mode). Press Ctrl-C to stop.")
        code = system.supervise(lambda: stop_flag["stop"])
    except StartupError as exc:
        system.show(f"start-up failed: {exc}")
        code = 1
    except Exception as exc:  # anything else: still stop what was started
        system.show(f"start-up failed: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        system.show("stopping...")
        system.shutdown()
        system.show("stopped.")
    return code
