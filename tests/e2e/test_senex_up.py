"""`senex up` (what `make run` calls) brings the whole system up and down again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from libs.runtime.local_system import SERVICES, SIMULATOR_PORT
from libs.runtime.settings import DEFAULT_METRICS_PORTS

ROOT = Path(__file__).resolve().parents[2]


def test_senex_up_starts_every_service_and_stops_on_ctrl_c(server_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    output = server_dir / "up.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "libs.cli.main", "up", "--root", str(server_dir)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while "Senex is up" not in output.read_text():
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        for name in SERVICES:
            url = f"http://127.0.0.1:{DEFAULT_METRICS_PORTS[name]}/health"
            with urllib.request.urlopen(url, timeout=5) as reply:
                assert json.loads(reply.read())["status"] == "ok"
        # The paper broker answers the SDK's OAuth with the default credentials.
        token = urllib.request.Request(
            f"http://127.0.0.1:{SIMULATOR_PORT}/oauth/token",
            data=json.dumps(
                {
                    "grant_type": "refresh_token",
                    "client_secret": "senex-paper-secret",
                    "refresh_token": "senex-paper-refresh",
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(token, timeout=5) as reply:
            assert json.loads(reply.read())["access_token"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, output.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.read_text()
    assert "embedded" in text
    assert "stopped." in text
    # Data is kept between runs, under the project's .senex/.
    assert (server_dir / ".senex" / "postgres" / "pgdata" / "PG_VERSION").exists()
    assert (server_dir / ".senex" / "sim").is_dir()
