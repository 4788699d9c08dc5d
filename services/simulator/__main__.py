"""``python -m services.simulator [--host H] [--port P]``: the same as ``senex sim``."""

from __future__ import annotations

import argparse
from datetime import datetime

from services.simulator.clock import START_EXAMPLE, parse_instant
from services.simulator.server import SimulatorServer
from services.simulator.settings import DEFAULT_PORT, SimSettings


def _start(text: str) -> datetime:
    """``--start``: an instant with a UTC offset; a clean argparse error otherwise."""
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main() -> None:
    """Parse the flags and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m services.simulator")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (0.0.0.0 in a container; it has no authentication)",
    )
    parser.add_argument(
        "--start",
        type=_start,
        default=None,
        help=f"simulated start instant with a UTC offset, e.g. {START_EXAMPLE}",
    )
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    settings = SimSettings.from_env()
    SimulatorServer(
        settings.data_dir,
        port=args.port,
        host=args.host,
        seed=settings.seed,
        start=args.start,
        speed=args.speed,
        settings=settings,
    ).run_forever()


if __name__ == "__main__":
    main()
