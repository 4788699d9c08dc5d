"""Simulator settings read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from services.simulator.customers import DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN

#: Default port of ``senex sim``.
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class SimSettings:
    """What a simulator starts with; tests pass these directly, the CLI reads the env."""

    data_dir: Path
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN
    seed: int = 7
    #: Real seconds a mid-priced order waits before it fills.
    fill_delay_seconds: float = 2.0
    #: Real seconds a "timeout after accept" fault holds the response.
    timeout_hold_seconds: float = 30.0
    risk_free_rate: Decimal = Decimal("0.0425")

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> SimSettings:
        """Settings from ``SENEX_SIM_*`` variables (data dir default ``.senex/sim``)."""
        env = os.environ
        return cls(
            data_dir=data_dir or Path(env.get("SENEX_SIM_DATA_DIR", ".senex/sim")),
            client_secret=env.get("SENEX_SIM_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
            refresh_token=env.get("SENEX_SIM_REFRESH_TOKEN", DEFAULT_REFRESH_TOKEN),
            seed=int(env.get("SENEX_SIM_SEED", "7")),
            fill_delay_seconds=float(env.get("SENEX_SIM_FILL_DELAY", "2.0")),
        )
