"""`senex contracts ...` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="contracts commands", no_args_is_help=True)


@app.command("schema")
def schema(
    directory: Annotated[
        Path, typer.Argument(help="Directory to write the schemas to (created if missing).")
    ],
) -> None:
    """Write the JSON Schema of every event, command and reply, plus an index.json."""
    # Imported here so `senex --help` does not pay for building every model.
    from libs.contracts.schema import write_schemas

    written = write_schemas(directory)
    typer.echo(f"wrote {len(written)} files to {directory}")
