"""`senex suggest`: the strategy's pure core, offline, on a snapshot file.

For "what would it do now?" and for audits. Exit status 2 when the snapshot cannot be
read or is malformed, with one line naming the bad field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from services.strategy.core import SnapshotError, decide, load_snapshot
from services.strategy.core.render import decision_json, decision_text

#: Exit status for an unreadable or malformed snapshot.
EXIT_BAD_SNAPSHOT = 2


def suggest(
    snapshot: Annotated[
        Path, typer.Option("--snapshot", help="JSON snapshot of market and account.")
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the decision as JSON.")
    ] = False,
) -> None:
    """What the strategy would suggest for SNAPSHOT (no broker, no database)."""
    try:
        data = snapshot.read_bytes()
    except OSError as exc:
        typer.echo(f"snapshot: cannot read {snapshot}: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_BAD_SNAPSHOT) from None
    try:
        parsed = load_snapshot(data)
    except SnapshotError as exc:
        typer.echo(f"invalid snapshot: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_SNAPSHOT) from None
    decision = decide(parsed)
    if json_output:
        typer.echo(json.dumps(decision_json(decision), indent=2))
    else:
        typer.echo(decision_text(decision))
