"""The ``senex`` command: one typer app, one sub-app per concern."""

from __future__ import annotations

import typer

from libs.cli import account, audit, contracts, db, replay, sim, status, suggest, up, user

app = typer.Typer(
    name="senex",
    help="Senex Trader: event-sourced services for the Senex Trident workflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(contracts.app, name="contracts")
app.add_typer(db.app, name="db")
app.add_typer(audit.app, name="audit")
app.add_typer(sim.app, name="sim")
app.add_typer(account.app, name="account")
app.add_typer(user.app, name="user")
app.command("up")(up.up)
app.command("status")(status.status)
app.command("replay")(replay.replay)
app.command("suggest")(suggest.suggest)
if __name__ == "__main__":
    app()
