"""`senex account link`: verified against the simulator, stored encrypted, event published."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from libs.cli.main import app
from libs.runtime.servers import ServerProcess
from services.simulator.server import SimulatorServer


@pytest.fixture
def env(simulator: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SENEX_BROKER_SIMULATOR_URL", simulator.url)
    monkeypatch.setenv("SENEX_BROKER_VAULT_KEY_FILE", str(tmp_path / "vault.key"))
    monkeypatch.delenv("SENEX_BROKER_VAULT_KEY", raising=False)
    return tmp_path / "vault.key"


def test_paper_link_is_stored_and_published(
    env: Path, database_url: str, nats_server: ServerProcess
) -> None:
    runner = CliRunner()
    args = ["account", "link", "--user", "alice", "--paper", "--database-url", database_url]
    result = runner.invoke(app, [*args, "--nats-url", nats_server.url])
    assert result.exit_code == 0, result.output
    assert "linked 5WT00001 (PAPER) to user alice" in result.output
    assert "published AccountLinked" in result.output
    assert env.stat().st_mode & 0o077 == 0
    listed = runner.invoke(app, ["account", "list", "--database-url", database_url])
    assert "5WT00001\tPAPER\talice" in listed.output


def test_link_without_nats_is_stored_but_exits_3(env: Path, database_url: str) -> None:
    args = ["account", "link", "--user", "alice", "--paper", "--database-url", database_url]
    result = CliRunner().invoke(
        app, [*args, "--nats-url", "nats://127.0.0.1:9", "--publish-timeout", "1"]
    )
    assert result.exit_code == 3, result.output
    assert "NOT published" in result.output


def test_bad_credentials_store_nothing(env: Path, database_url: str) -> None:
    args = ["account", "link", "--user", "bob", "--paper", "--client-secret-stdin"]
    result = CliRunner().invoke(
        app, [*args, "--database-url", database_url], input="wrong-secret\nwrong-refresh\n"
    )
    assert result.exit_code == 1, result.output
    assert "AUTH_FAILED" in result.output
    assert "wrong-secret" not in result.output


def test_stdin_needs_two_lines(env: Path, database_url: str) -> None:
    args = ["account", "link", "--user", "bob", "--client-secret-stdin"]
    result = CliRunner().invoke(app, [*args, "--database-url", database_url], input="only-one\n")
    assert result.exit_code == 1
    assert "two lines" in result.output
