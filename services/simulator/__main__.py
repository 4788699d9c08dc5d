"""``python -m services.simulator [--port P]``: the same as ``senex sim``."""

from __future__ import annotations

import argparse
from datetime import datetime

from services.simulator.server import SimulatorServer
from services.simulator.settings import DEFAULT_PORT, SimSettings


def main() -> None:
    """Parse the flags and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m services.simulator")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--start", type=datetime.fromisoformat, default=None)
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    settings = SimSettings.from_env()
    SimulatorServer(
        settings.data_dir,
        port=args.port,
        seed=settings.seed,
        start=args.start,
        speed=args.speed,
        settings=settings,
    ).run_forever()


if __name__ == "__main__":
    main()
