"""``--start`` without a UTC offset is a usage error (exit 2, no traceback) for both
``senex sim`` and ``python -m services.simulator``; nothing is served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from libs.cli.main import app

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = "2025-06-03T11:00:00-04:00"
BAD_STARTS = [
    pytest.param("2025-06-03T11:00:00", "no UTC offset", id="naive"),
    pytest.param("2025-06-03", "no UTC offset", id="date-only"),
    pytest.param("next tuesday", "not an ISO-8601 instant", id="garbage"),
]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SENEX_SIM_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("start", "why"), BAD_STARTS)
def test_senex_sim_in_process_rejects_a_start_without_offset(
    start: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENEX_SIM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["sim", "--port", "0", "--start", start])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a usage error, not a crash
    assert "'--start'" in result.output
    assert why in result.output
    assert EXAMPLE in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("start", "why"), BAD_STARTS)
def test_senex_sim_subprocess_exits_2_without_traceback(
    start: str, why: str, tmp_path: Path
) -> None:
    result = run(tmp_path, "libs.cli.main", "sim", "--port", "0", "--start", start)
    assert result.returncode == 2, result.stderr
    assert "'--start'" in result.stderr
    assert why in result.stderr
    assert EXAMPLE in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "listening on" not in result.stdout


@pytest.mark.parametrize(("start", "why"), BAD_STARTS)
def test_python_m_services_simulator_exits_2_without_traceback(
    start: str, why: str, tmp_path: Path
) -> None:
    result = run(tmp_path, "services.simulator", "--port", "0", "--start", start)
    assert result.returncode == 2, result.stderr
    assert "argument --start:" in result.stderr
    assert why in result.stderr
    assert EXAMPLE in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "listening on" not in result.stdout
