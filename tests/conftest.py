"""Fixtures giving tests real servers: NATS with JetStream and PostgreSQL.

One pair per test session (started lazily, only when a test asks), a fresh database per
test module, and factories for fault tests that need servers of their own to kill and
restart. ``SENEX_TEST_BACKEND=docker`` switches both to testcontainers.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from libs.runtime.servers import (
    PostgresProcess,
    ServerProcess,
    discard,
    new_nats,
    new_postgres,
)

pytest_plugins = ["tests.simulator_fixtures"]

ServerT = TypeVar("ServerT", bound=ServerProcess)


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """Where the servers of this test session keep their data.

    Not under pytest's temporary root: pytest resets that to mode 0700, which locks out
    the unprivileged user PostgreSQL runs as when the tests run as root.
    """
    root = Path(tempfile.mkdtemp(prefix="senex-test-servers-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server(server_root: Path) -> Iterator[ServerProcess]:
    """The session's shared NATS server. Tests must not stop it: use `nats_factory`."""
    server = new_nats(server_root / "nats")
    server.start()
    yield server
    discard(server)


@pytest.fixture(scope="session")
def postgres_server(server_root: Path) -> Iterator[PostgresProcess]:
    """The session's shared PostgreSQL server. Tests must not stop it: use the factory."""
    server = new_postgres(server_root / "postgres")
    server.start()
    yield server
    discard(server)


def _database_name(node_name: str) -> str:
    return "t_" + re.sub(r"[^a-z0-9_]", "_", node_name.lower())[-50:]


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresProcess, request: pytest.FixtureRequest) -> str:
    """A database of its own for the test module, on the shared server."""
    return postgres_server.create_database(_database_name(request.module.__name__))


@pytest.fixture
def server_dir(server_root: Path, request: pytest.FixtureRequest) -> Path:
    """A directory of the test's own for the servers it starts."""
    # Short names: the PostgreSQL socket path must stay under 108 bytes.
    return Path(tempfile.mkdtemp(prefix=_database_name(request.node.name)[:12], dir=server_root))


def _factory(
    build: Callable[[Path], ServerT], base: Path, prefix: str
) -> Iterator[Callable[[], ServerT]]:
    started: list[ServerT] = []

    def make() -> ServerT:
        server = build(base / f"{prefix}{len(started)}")
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        discard(server)


@pytest.fixture
def nats_factory(server_dir: Path) -> Iterator[Callable[[], ServerProcess]]:
    """Start dedicated NATS servers that a fault test may kill and restart."""
    yield from _factory(new_nats, server_dir, "nats")


@pytest.fixture
def postgres_factory(server_dir: Path) -> Iterator[Callable[[], PostgresProcess]]:
    """Start dedicated PostgreSQL servers that a fault test may kill and restart."""
    yield from _factory(new_postgres, server_dir, "pg")
