"""`senex db ...` commands."""

from __future__ import annotations

from typing import Annotated

import typer

from libs.eventlog.errors import EventLogError
from libs.eventlog.migrate import migrate_sync

app = typer.Typer(help="db commands", no_args_is_help=True)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="PostgreSQL DSN (default: $DATABASE_URL).",
        show_default=False,
    ),
]


@app.command("migrate")
def migrate_command(database_url: DatabaseUrl) -> None:
    """Apply pending schema migrations (safe to repeat, and to run concurrently)."""
    try:
        applied = migrate_sync(database_url)
    except EventLogError as exc:
        typer.echo(f"migrate failed: {exc}", err=True)
        raise typer.Exit(1) from None
    if not applied:
        typer.echo("schema up to date: no migration to apply")
    for migration in applied:
        typer.echo(f"applied {migration.version:04d}_{migration.name}")
