"""The deployment files: docker-compose.yml, Prometheus's configuration, the dashboards.

`docker-compose config` (Debian's docker-compose, no engine needed) validates the
compose file; `promtool check config` (Debian's prometheus package) the scrape
configuration. Both are installed with apt-get when missing and we are root, as the
browser tests install chromium; otherwise the test fails and says what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from libs.runtime.local_system import SERVICES
from libs.runtime.settings import DEFAULT_METRICS_PORTS
from tests.e2e.dashboards import DASHBOARDS, dashboard_exprs, exported_series, metric_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"


def _tool(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` when missing."""
    found = shutil.which(command)
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            check=False,
            env=env,
            timeout=600,
        )
        found = shutil.which(command)
    if found is None:
        pytest.fail(
            f"{command} is not installed: run `apt-get install -y {package}` (make test does)"
        )
    return found


def _compose_config(*args: str) -> subprocess.CompletedProcess[str]:
    # No .env file and none of our variables: the defaults in the file must suffice.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SENEX_", "NATS_", "DATABASE_"))
    }
    return subprocess.run(
        [_tool("docker-compose", "docker-compose"), "-f", str(COMPOSE), *args, "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_docker_compose_config_accepts_the_compose_file() -> None:
    result = _compose_config()
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    services = config["services"]
    expected = {"nats", "postgres", "init", "simulator", "prometheus", "grafana"}
    expected |= {name.replace("_", "-") for name in SERVICES}
    assert expected <= set(services), expected - set(services)
    for node in ("nats-1", "nats-2", "nats-3"):  # listed, but only run with --profile cluster
        assert services[node]["profiles"] == ["cluster"], node
    for name in expected - {"init"}:  # the one-shot init has neither
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["init"]["restart"] == "no"
    # One image for every service, built once by deploy/Dockerfile.
    images = {services[name.replace("_", "-")]["image"] for name in SERVICES}
    assert images == {"senex:local"}
    assert services["init"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "--host" in services["simulator"]["command"]
    assert "-js" in services["nats"]["command"]
    assert set(config["volumes"]) >= {"nats-data", "pg-data"}


def test_the_cluster_profile_adds_three_clustered_nats_nodes() -> None:
    result = _compose_config("--profile", "cluster")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for node in ("nats-1", "nats-2", "nats-3"):
        command = services[node]["command"]
        assert "--js" in command
        assert "--cluster_name=senex" in command
        assert any(c.startswith("--routes=") and c.count("nats://") == 3 for c in command)


def test_promtool_accepts_the_prometheus_configuration() -> None:
    result = subprocess.run(
        [_tool("promtool", "prometheus"), "check", "config", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_service_on_its_metrics_port() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    } | {
        # Services that scale out are found by DNS: every replica of the name.
        f"{name}:{sd['port']}"
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    for name, port in DEFAULT_METRICS_PORTS.items():
        assert f"{name.replace('_', '-')}:{port}" in targets, name


def test_dashboards_are_provisioned_and_query_only_senex_metrics() -> None:
    boards = {p.stem: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")}
    assert set(boards) == {"trading", "pipeline", "health"}
    assert len({b["uid"] for b in boards.values()}) == 3
    titles = " ".join(p["title"] for b in boards.values() for p in b["panels"]).lower()
    for wanted in (
        "quotes",
        "orders by status",
        "fills",
        "open positions",
        "p&l",
        "risk utilisation",
        "needing attention",
        "events handled",
        "consumer lag",
        "p99",
        "dead letters",
        "errors per second, by kind",
        "service up",
    ):
        assert wanted in titles, wanted
    for board, title, expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, f"{board} / {title}: no metric in {expr!r}"
        assert all(n.startswith("senex_") for n in names), f"{board} / {title}: {names}"
    datasource = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    assert yaml.safe_load(datasource.read_text())["datasources"][0]["uid"] == "prometheus"


def test_metric_names_and_exported_series_strip_suffixes_by_family_type() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, service) (rate(x_seconds_bucket{a="b"}[5m])))'
        ' / sum(increase(y_total{status="FILLED"}[1h])) + on (service) z'
    )
    assert metric_names(expr) == {"x_seconds_bucket", "y_total", "z"}
    page = (
        "# HELP x_seconds h\n# TYPE x_seconds histogram\n"
        "# HELP y_total c\n# TYPE y_total counter\n"
        "# HELP z g\n# TYPE z gauge\n"
    )
    series = exported_series(page)
    assert {"x_seconds_bucket", "x_seconds_count", "x_seconds_sum", "y_total", "z"} <= series
    assert "x_seconds" not in series
    assert "z_bucket" not in series
