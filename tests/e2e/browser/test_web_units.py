"""The page's pure modules (decimal money, credit checks, P&L, backoff) under node's
test runner: fast checks of what the browser tests exercise only through the screen."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from services.gateway.web import WEB_ROOT


def test_web_modules_pass_their_unit_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (the web dependencies need npm as well)")
    result = subprocess.run(
        [node, "--test", str(WEB_ROOT / "test")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
