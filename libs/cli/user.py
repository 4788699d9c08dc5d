"""`senex user create`: a gateway user (argon2 hash), in paper mode with an account of its own.

In paper mode the new user is linked to a new simulator customer (``POST
/sim/customers``): credentials stored in the vault, ``AccountLinked`` and the default
``AccountSettingsChanged`` published. ``--no-link`` skips that (link later in the
browser or with ``senex account link``).

Exit status: 0 done; 1 refused (bad name or password, name taken); 2 database, NATS or
simulator unreachable, nothing stored; 3 user created but the paper link failed or
was not published (see the message; ``senex account link`` can finish it).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault
from libs.contracts.errors import (
    BrokerTimeout,
    BrokerUnavailable,
    InvalidState,
    SenexError,
    ServiceUnavailable,
    ValidationFailed,
)
from libs.eventlog.errors import EventLogError
from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.settings import TradingMode
from services.gateway.accounts import Accounts, SettingsStore
from services.gateway.db import Pool
from services.gateway.users import UserStore, check_password, normalise_username

app = typer.Typer(help="gateway users", no_args_is_help=True)

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2
EXIT_PARTIAL = 3


class _Unreachable(Exception):
    """A dependency could not be reached before anything was stored."""


class _Partial(Exception):
    """The user exists, but the paper link is incomplete."""


async def create_user(
    *,
    username: str,
    password: str,
    database_url: str,
    nats_url: str,
    link: bool,
    broker_settings: BrokerSettings,
    publish_timeout: float = 5.0,
) -> tuple[str, str | None]:
    """Create the user (and its paper link); the user id and the linked account, if any."""
    user_id = normalise_username(username)
    check_password(password)
    paper = broker_settings.mode is TradingMode.PAPER
    try:
        await migrate(database_url)
    except EventLogError as exc:
        raise _Unreachable(f"cannot prepare the database: {exc}") from None
    bus: Bus | None = None
    if paper and link:
        # Connected first: without NATS nothing is stored, so re-running is clean.
        try:
            bus = await asyncio.wait_for(Bus.connect(nats_url, "senex-cli"), publish_timeout)
        except (TimeoutError, OSError, SenexError) as exc:
            reason = type(exc).__name__
            raise _Unreachable(f"NATS at {nats_url} is unreachable ({reason})") from None
    pool = Pool(database_url, 1)
    try:
        user = await UserStore(pool).create(user_id, password)
        if bus is None:
            return user.user_id, None
        try:
            accounts = Accounts(
                vault=await CredentialsVault.open(database_url, broker_settings),
                settings_store=SettingsStore(pool),
                broker_settings=broker_settings,
                publish=lambda event: bus.publish(event, timeout=publish_timeout),
                system_mode=broker_settings.mode,
            )
            stored = await accounts.link_new_paper_customer(
                user_id=user.user_id, nickname=None, now=datetime.now(UTC)
            )
        except SenexError as exc:
            raise _Partial(
                f"user {user.user_id} was created, but the paper account was not linked "
                f"({exc.kind.value}: {exc.message})"
            ) from None
        return user.user_id, stored.account_number
    finally:
        await pool.close()
        if bus is not None:
            await bus.close()


@app.command("create")
def create_command(
    username: Annotated[str, typer.Option("--username", help="The login name (lower-cased).")],
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="PostgreSQL DSN (default: $DATABASE_URL).",
            show_default=False,
        ),
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")
    ] = False,
    password: Annotated[
        str | None,
        typer.Option("--password", help="The password (for scripts; visible in `ps`)."),
    ] = None,
    no_link: Annotated[
        bool,
        typer.Option("--no-link", help="Paper mode: do not create a simulator account."),
    ] = False,
    nats_url: Annotated[
        str, typer.Option("--nats-url", envvar="NATS_URL", help="NATS server.")
    ] = "nats://127.0.0.1:4222",
) -> None:
    """Create a user; in paper mode also a simulator account of their own, linked."""
    if password_stdin == (password is not None):
        typer.echo("give exactly one of --password-stdin and --password", err=True)
        raise typer.Exit(EXIT_REFUSED)
    secret = sys.stdin.readline().rstrip("\r\n") if password_stdin else password
    assert secret is not None
    try:
        user_id, account = asyncio.run(
            create_user(
                username=username,
                password=secret,
                database_url=database_url,
                nats_url=nats_url,
                link=not no_link,
                broker_settings=BrokerSettings(),
            )
        )
    except (ValidationFailed, InvalidState) as exc:
        typer.echo(f"not created: {exc.message}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    except (_Unreachable, ServiceUnavailable, BrokerUnavailable, BrokerTimeout) as exc:
        typer.echo(f"not created: {exc}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except _Partial as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_PARTIAL) from None
    except SenexError as exc:
        typer.echo(f"not created ({exc.kind.value}): {exc.message}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    typer.echo(f"created user {user_id}")
    if account is not None:
        typer.echo(f"linked paper account {account} (a simulator customer of its own)")
