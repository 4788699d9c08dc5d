"""`senex status`: what `senex up` runs (from .senex/state.json) and each /health."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from libs.runtime.local_system import STATE_FILE, http_ok

EXIT_UNHEALTHY = 1
EXIT_NOT_RUNNING = 3


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_status(root: Path) -> dict[str, Any] | None:
    """The state file with each process's liveness and health added; None when not up."""
    path = root / ".senex" / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    state["running"] = _alive(state.get("pid"))
    for proc in state.get("processes", {}).values():
        proc["alive"] = _alive(proc.get("pid"))
        proc["healthy"] = proc["alive"] and http_ok(proc["health_url"])
    return state


def status(
    root: Annotated[Path, typer.Option(help="Project folder `senex up` runs in.")] = Path(),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show what `senex up` runs and its health. Exit 0 all healthy, 1 something is
    not, 3 nothing runs."""
    state = read_status(root.resolve())
    if state is None or not state["running"]:
        typer.echo("Senex is not running here (no live `senex up` state in .senex/).")
        raise typer.Exit(EXIT_NOT_RUNNING)
    processes: dict[str, dict[str, Any]] = state["processes"]
    healthy = all(p["healthy"] for p in processes.values())
    if as_json:
        typer.echo(json.dumps(state, indent=2))
    else:
        typer.echo(f"senex up (pid {state['pid']}), {state['mode']} mode")
        typer.echo(f"{'process':<18} {'pid':>7}  {'restarts':>8}  health")
        for name, p in processes.items():
            health = "ok" if p["healthy"] else ("NOT HEALTHY" if p["alive"] else "NOT RUNNING")
            typer.echo(f"{name:<18} {p['pid'] or 0:>7}  {p['restarts']:>8}  {health}")
        for name, server in state.get("servers", {}).items():
            typer.echo(f"{name:<18} {server.get('pid') or 0:>7}  {'':>8}  {server['url']}")
        typer.echo(f"Trading screen  {state['gateway_url']}")
        if state.get("clock"):
            typer.echo(f"Clock           {state['clock']}")
    raise typer.Exit(0 if healthy else EXIT_UNHEALTHY)
