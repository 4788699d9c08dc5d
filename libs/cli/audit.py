"""`senex audit ...` commands."""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
import psycopg
import typer

from libs.eventlog.errors import EventLogError, translated_errors
from libs.eventlog.verify import VerifyReport, verify_chain

app = typer.Typer(help="audit commands", no_args_is_help=True)

#: Exit status when the log is readable but its chain or positions are broken.
EXIT_BROKEN = 1
#: Exit status when the log could not be verified at all (unreachable, no schema).
EXIT_UNVERIFIABLE = 2


async def _verify(database_url: str) -> VerifyReport:
    with translated_errors():
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await verify_chain(conn)


@app.command("verify")
def verify_command(
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="PostgreSQL DSN (default: $DATABASE_URL).",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a summary.")
    ] = False,
) -> None:
    """Check the event log's hash chain and gapless positions from position 1.

    Exits 0 when the log is intact, 1 naming the first bad position, 2 when the log
    could not be read.
    """
    try:
        report = asyncio.run(_verify(database_url))
    except EventLogError as exc:
        if as_json:
            typer.echo(orjson.dumps({"ok": False, "error": str(exc)}).decode())
        else:
            typer.echo(f"verify failed: {exc}", err=True)
        raise typer.Exit(EXIT_UNVERIFIABLE) from None
    if as_json:
        typer.echo(orjson.dumps(report.to_json()).decode())
    else:
        typer.echo(report.summary(), err=not report.ok)
    if not report.ok:
        raise typer.Exit(EXIT_BROKEN)
