"""examples/sdk_against_sim.py: the plain SDK walks every step against `senex sim`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from libs.runtime.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_public_sdk_example_passes_against_senex_sim(server_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "SENEX_SIM_DATA_DIR": str(server_dir / "sim")}
    log = server_dir / "sim.out"
    with log.open("wb") as out:
        sim = subprocess.Popen(
            # A Tuesday morning in market hours: the example's marketable order fills.
            [sys.executable, "-m", "libs.cli.main", "sim", "--port", str(port),
             "--start", "2025-06-03T11:00:00-04:00"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "listening" not in log.read_text():
            assert sim.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        run = subprocess.run(
            [sys.executable, "examples/sdk_against_sim.py", "--url", f"http://127.0.0.1:{port}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "all steps passed" in run.stdout
        for step in ("DXLink daily candles", "filled (account streamer)", "cancelled"):
            assert step in run.stdout
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=30)
