"""`senex up`: the whole system on this machine, paper mode."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from libs.runtime.local_system import run_local_system


def up(
    root: Annotated[
        Path, typer.Option(help="Project folder; embedded server data goes to ROOT/.senex/.")
    ] = Path(),
) -> None:
    """Start servers (or use NATS_URL/DATABASE_URL) and every service; stop on Ctrl-C."""
    raise typer.Exit(run_local_system(root.resolve()))
