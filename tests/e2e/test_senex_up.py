"""`senex up` (what `make run` calls): the whole system up, one trade, metrics, a crash, down.

One `senex up` for the module (simulator mode, embedded servers in a temporary
directory, the fixed ports a newcomer gets), its tests in order: what it printed and
`senex status`; one trade through the HTTP API as the first user it created; every
metric a dashboard queries is exported; a killed service is restarted; Ctrl-C stops
everything and leaves nothing running.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from libs.runtime.local_system import GATEWAY_PORT, SERVICES, SIMULATOR_PORT
from libs.runtime.servers import port_is_free
from libs.runtime.settings import DEFAULT_METRICS_PORTS
from tests.e2e.dashboards import dashboard_exprs, exported_series, metric_names

ROOT = Path(__file__).resolve().parents[2]
PORTS = (GATEWAY_PORT, SIMULATOR_PORT, *DEFAULT_METRICS_PORTS.values())
API = f"http://127.0.0.1:{GATEWAY_PORT}"


@dataclass
class Up:
    """The running `senex up` of this module."""

    proc: subprocess.Popen[bytes]
    root: Path
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / ".senex" / "state.json").read_text())
        return data

    def wait_for(self, needle: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while needle not in self.text():
            assert self.proc.poll() is None, self.text()[-4000:]
            assert time.monotonic() < deadline, self.text()[-4000:]
            time.sleep(0.2)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _senex(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "libs.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def up(server_root: Path) -> Iterator[Up]:
    taken = [port for port in PORTS if not port_is_free(port)]
    assert not taken, f"ports needed by `senex up` are in use: {taken}"
    root = server_root / "up"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    for name in ("SENEX_FIRST_USER", "SENEX_FIRST_PASSWORD", "SENEX_MODE", "SENEX_LOG_FORMAT"):
        env.pop(name, None)
    output = root / "up.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "libs.cli.main", "up", "--root", str(root)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Up(proc, root, output)
    try:
        running.wait_for("Senex is up", 180)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_up_prints_the_url_the_first_user_the_clock_and_a_health_table(up: Up) -> None:
    text = up.text()
    assert "embedded" in text
    assert f"http://127.0.0.1:{GATEWAY_PORT}/trading/" in text
    for name in ("simulator", *SERVICES):
        assert re.search(rf"^{name}\s+\d+\s+0\s+ok\b", text, re.MULTILINE), name
    assert re.search(r"^Clock\s+(SIMULATED time from|real time)", text, re.MULTILINE)
    # Child output reaches the console prefixed with the service's name.
    assert re.search(r"^gateway\s+\| ", text, re.MULTILINE)
    assert (up.root / ".senex" / "logs" / "gateway.log").stat().st_size > 0
    # The random password is printed exactly once.
    password = _first_password(up)
    assert text.count(password) == 1
    status = _senex("status", "--root", str(up.root), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    state = json.loads(status.stdout)
    assert set(state["processes"]) == {"simulator", *SERVICES}
    assert all(p["healthy"] for p in state["processes"].values())
    assert password not in status.stdout


def _first_password(up: Up) -> str:
    match = re.search(r"^User\s+trader, password (\S+), paper account (\S+)", up.text(), re.M)
    assert match, up.text()[-3000:]
    return match.group(1)


class Client:
    """A logged-in API session (cookie + CSRF header), with urllib only."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.csrf = ""

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{API}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.csrf:
            request.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(request, timeout=60) as reply:
                return int(reply.status), json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def test_one_trade_through_the_api_as_the_first_user(up: Up) -> None:
    client = Client()
    status, login = client.call(
        "POST", "/api/auth/login", {"username": "trader", "password": _first_password(up)}
    )
    assert status == 200, login
    client.csrf = login["csrf_token"]
    status, me = client.call("GET", "/api/me")
    assert status == 200, me
    assert me["mode"] == "PAPER"
    [account] = me["accounts"]
    assert account["mode"] == "PAPER"
    # Market data may still be warming its chain window: retry a refused generation.
    deadline = time.monotonic() + 90
    while True:
        status, reply = client.call(
            "POST", "/trading/api/senex_trident/generate/", {"symbol": "QQQ"}
        )
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert status == 200, reply
    suggestion = reply["suggestion"]["suggestion"]
    # Below the natural credit: marketable even if the quotes move a little meanwhile.
    natural = Decimal(suggestion["total_natural_credit"])
    credit = (natural - Decimal("0.30")).quantize(Decimal("0.01"))
    assert credit > 0, suggestion
    status, approval = client.call(
        "POST",
        f"/trading/api/senex_trident/suggestions/{suggestion['suggestion_id']}/execute/",
        {"custom_credit": str(credit)},
    )
    assert status == 200, approval
    assert Decimal(approval["limit_credit"]) == credit
    deadline = time.monotonic() + 60
    while True:
        _, orders = client.call("GET", "/trading/api/orders/")
        _, positions = client.call("GET", "/trading/api/positions/")
        opening = [o for o in orders["orders"] if o["suggestion_id"] == suggestion["suggestion_id"]]
        if opening and opening[0]["status"] == "FILLED" and positions["positions"]:
            break
        assert time.monotonic() < deadline, (orders, positions)
        time.sleep(0.5)
    [position] = positions["positions"]
    assert position["status"] == "OPEN"
    assert position["underlying"] == "QQQ"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def test_every_metric_a_dashboard_queries_is_exported(up: Up) -> None:
    exported: set[str] = set()
    for name in SERVICES:
        page = _scrape(DEFAULT_METRICS_PORTS[name])
        assert f'senex_service_up{{service="{name}"}} 1.0' in page
        exported |= exported_series(page)
    exprs = list(dashboard_exprs())
    assert len(exprs) > 20
    missing = {
        f"{board} / {title}: {name}"
        for board, title, expr in exprs
        for name in metric_names(expr)
        if name not in exported
    }
    assert not missing, sorted(missing)
    # After the trade, the new portfolio gauges say so.
    page = _scrape(DEFAULT_METRICS_PORTS["position_monitor"])
    assert 'senex_open_positions{service="position_monitor"} 1.0' in page
    risk = _scrape(DEFAULT_METRICS_PORTS["risk"])
    assert re.search(r"senex_risk_utilisation_ratio\{[^}]*\} 0\.\d", risk), risk


def test_a_killed_service_is_restarted_and_the_system_keeps_running(up: Up) -> None:
    before = up.state()["processes"]["strategy"]
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = up.state()["processes"]["strategy"]
        if now["pid"] != before["pid"] and _healthy(DEFAULT_METRICS_PORTS["strategy"]):
            break
        assert up.proc.poll() is None, up.text()[-3000:]
        assert time.monotonic() < deadline, up.text()[-3000:]
        time.sleep(0.3)
    assert now["restarts"] == before["restarts"] + 1
    assert "strategy exited with code -9" in up.text()
    assert "restarting in 1 s" in up.text()
    for name in SERVICES:
        assert _healthy(DEFAULT_METRICS_PORTS[name]), name


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_ctrl_c_stops_everything_and_leaves_nothing_running(up: Up) -> None:
    state = up.state()
    pids = [p["pid"] for p in state["processes"].values()]
    pids += [s["pid"] for s in state["servers"].values() if s["pid"]]
    assert len(pids) == len(SERVICES) + 1 + 2
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(timeout=120) == 0, up.text()[-3000:]
    assert up.text().rstrip().endswith("stopped.")
    # The postmaster removes its pid file (what `pg_ctl stop` waits for) a moment
    # before its process is gone.
    deadline = time.monotonic() + 10
    while [pid for pid in pids if _pid_alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in pids if _pid_alive(pid)] == []
    assert [port for port in PORTS if not port_is_free(port)] == []
    assert not (up.root / ".senex" / "state.json").exists()
    assert _senex("status", "--root", str(up.root)).returncode == 3
    # Data is kept between runs, under the project's .senex/.
    assert (up.root / ".senex" / "postgres" / "pgdata" / "PG_VERSION").exists()
    assert (up.root / ".senex" / "sim" / "sim.sqlite3").exists()
