"""`senex up`: the whole system on this machine (paper mode unless SENEX_MODE=live)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from libs.runtime.local_system import run_local_system
from services.simulator.clock import START_EXAMPLE, parse_instant


def _aware(value: str) -> datetime:
    """``--sim-start`` as an aware instant; a usage error when naive or malformed."""
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--sim-start'") from exc


def up(
    root: Annotated[
        Path, typer.Option(help="Project folder; embedded server data goes to ROOT/.senex/.")
    ] = Path(),
    sim_start: Annotated[
        datetime | None,
        typer.Option(
            parser=_aware,
            metavar="<instant>",
            help="Paper mode: simulated start, with a UTC offset, e.g. "
            f"{START_EXAMPLE} (default: now when the market is open, else its next open).",
        ),
    ] = None,
    sim_speed: Annotated[
        float | None,
        typer.Option(min=0, help="Paper mode: simulated seconds per real second (default 1)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="Keep service logs in .senex/logs/ only.")
    ] = False,
) -> None:
    """Start servers (or use NATS_URL/DATABASE_URL), the simulator and every service,
    restarting any that crash; stop everything on Ctrl-C."""
    code = run_local_system(
        root.resolve(), sim_start=sim_start, sim_speed=sim_speed, echo_logs=not quiet
    )
    raise typer.Exit(code)
