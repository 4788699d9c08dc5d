"""Each ``python -m services.X`` starts, reports healthy, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from libs.runtime.local_system import SERVICES
from libs.runtime.servers import PostgresProcess, ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[3]


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited early with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                body: dict[str, object] = json.loads(reply.read())
                return body
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_reports_health_and_stops_on_sigterm(
    service: str,
    nats_server: ServerProcess,
    postgres_server: PostgresProcess,
    tmp_path: Path,
) -> None:
    dsn = postgres_server.create_database("services")
    port = free_port()
    env = {**os.environ, "NATS_URL": nats_server.url, "DATABASE_URL": dsn}
    env["SENEX_METRICS_PORT"] = str(port)
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/health", proc)
        assert health["status"] == "ok", health
        assert health["service"] == service
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert f'senex_service_up{{service="{service}"}} 1.0' in reply.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "service started" in events
    assert "service stopped" in events
    assert all(line.get("service") == service for line in lines)
