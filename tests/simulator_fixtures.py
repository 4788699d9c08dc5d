"""Fixtures running the broker simulator and pointing the real TastyTrade SDK at it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tastytrade import Session

from libs.broker.session import paper_redirect
from services.simulator.customers import DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN
from services.simulator.server import SimulatorServer

#: A Tuesday mid-session, so the market is open when a test starts.
SIM_START = datetime.fromisoformat("2025-06-03T11:00:00-04:00")


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A fresh simulator in a temporary directory, started at :data:`SIM_START`."""
    with tempfile.TemporaryDirectory(prefix="senex-sim-") as tmp:
        server = SimulatorServer(Path(tmp), start=SIM_START, seed=7)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def sdk_session(
    server: SimulatorServer,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    refresh_token: str = DEFAULT_REFRESH_TOKEN,
    **client_kwargs: Any,
) -> Session:
    """A real SDK ``Session`` whose traffic goes to ``server`` (TASTYTRADE_PROTOCOL.md §1)."""
    return Session(
        client_secret,
        refresh_token,
        event_hooks={"request": [paper_redirect(server.url)]},
        trust_env=False,
        **client_kwargs,
    )
