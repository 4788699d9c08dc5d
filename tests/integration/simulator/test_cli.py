"""``senex sim``: serve in a subprocess, drive it with the subcommands, stop it with SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from libs.cli.main import app

REPO = Path(__file__).resolve().parents[3]
START = "2025-06-03T11:00:00-04:00"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A ``senex sim`` subprocess and the lines it printed so far."""

    process: subprocess.Popen[str]
    port: int
    data_dir: Path
    lines: queue.Queue[str]

    def wait_for_line(self, containing: str, timeout: float = 30.0) -> str:
        """The first printed line containing ``containing``; fails after ``timeout`` s."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"senex sim printed no line with {containing!r} in {timeout} s")
            if containing in line:
                return line


@pytest.fixture
def served() -> Iterator[Served]:
    """``python -m libs.cli.main sim --port P`` over a world-readable temporary data dir."""
    data_dir = Path(tempfile.mkdtemp(prefix="senex-sim-cli-"))
    data_dir.chmod(0o755)
    port = free_port()
    env = {**os.environ, "SENEX_SIM_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "libs.cli.main", "sim", "--port", str(port), "--start", START],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield Served(process, port, data_dir, lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


def sim(port: int, *args: str) -> Any:
    """Run ``senex sim ARGS --port PORT`` in-process; the JSON it prints."""
    result = CliRunner().invoke(app, ["sim", *args, "--port", str(port)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_senex_sim_serves_answers_subcommands_and_exits_0_on_sigterm(served: Served) -> None:
    listening = served.wait_for_line("listening on")
    assert listening.endswith(f"http://127.0.0.1:{served.port}")

    carol = sim(served.port, "customer", "create", "Carol", "--accounts", "2", "--cash", "5000")
    assert carol["name"] == "Carol"
    assert carol["accounts"] == ["5WT00002", "5WT00003"]
    names = [c["name"] for c in sim(served.port, "customer", "list")]
    assert names == ["Default", "Carol"]

    assert sim(served.port, "clock")["now"].startswith("2025-06-03T15:")
    moved = sim(served.port, "clock", "--time", "2025-06-04T10:00:00-04:00", "--speed", "0")
    assert moved == {"now": "2025-06-04T14:00:00.000Z", "speed": 0.0, "market-open": True}

    faults = sim(served.port, "fault", "add", "reject", "--reason", "Halted", "--count", "2")
    assert faults == [{"kind": "reject", "remaining": 2, "reason": "Halted"}]
    assert sim(served.port, "fault", "clear") == []

    assert sim(served.port, "price", "SPY", "--set", "612.34")["price"] == "612.34"
    assert sim(served.port, "price", "spy")["bid"] == "612.33"
    assert sim(served.port, "price", "SPY", "--reset")["price"] != "612.34"

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=15) == 0
    assert (served.data_dir / "sim.sqlite3").exists()


def test_a_subcommand_reports_an_api_error_and_exits_1(served: Served) -> None:
    served.wait_for_line("listening on")
    result = CliRunner().invoke(app, ["sim", "fault", "add", "explode", "--port", str(served.port)])
    assert result.exit_code == 1
    assert json.loads(result.stderr)["error"]["code"] == "validation_error"


def test_a_subcommand_without_a_simulator_exits_2() -> None:
    result = CliRunner().invoke(app, ["sim", "clock", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "simulator not reachable" in result.stderr
