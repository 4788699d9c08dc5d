"""`senex account ...`: link broker accounts to users, list links, unlink.

``link`` checks the credentials with the broker (or the simulator) before storing them
encrypted in the vault, then publishes ``AccountLinked``. When NATS is unreachable the
link stays stored (re-running the command is safe: it replaces the credentials and
publishes again) and the command exits 3, because services will not trade the account
until they have seen the event: a trader must not believe it is live when it is not.

Exit status: 0 done; 1 refused (bad input, credentials refused, account not reachable
with them, linked to another user); 2 broker or database unreachable, nothing stored;
3 stored but ``AccountLinked`` not published.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerAccount, BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.vault import AccountLink, CredentialsVault
from libs.contracts.account import AccountLinked, TradingMode
from libs.contracts.errors import (
    BrokerTimeout,
    BrokerUnavailable,
    SenexError,
    ServiceUnavailable,
)
from libs.eventlog.errors import EventLogError
from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.clock import SystemClock
from libs.runtime.envelopes import Envelopes
from libs.runtime.settings import TradingMode as BrokerMode

app = typer.Typer(help="broker account links", no_args_is_help=True)

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2
EXIT_NOT_PUBLISHED = 3

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="PostgreSQL DSN (default: $DATABASE_URL).",
        show_default=False,
    ),
]


class LinkRefused(Exception):
    """The link cannot be made with what was given."""


def read_stdin_credentials(text: str) -> BrokerCredentials:
    """Client secret on the first line, refresh token on the second."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 2:
        raise LinkRefused(
            "--client-secret-stdin expects two lines on stdin: the OAuth client secret, "
            "then the refresh token"
        )
    return BrokerCredentials(client_secret=SecretStr(lines[0]), refresh_token=SecretStr(lines[1]))


def choose_account(accounts: list[BrokerAccount], wanted: str | None) -> BrokerAccount:
    """The account to link: ``wanted``, or the only one the credentials reach."""
    numbers = ", ".join(a.account_number for a in accounts) or "none"
    if wanted is not None:
        for account in accounts:
            if account.account_number == wanted:
                return account
        raise LinkRefused(
            f"these credentials do not reach account {wanted} (they reach: {numbers})"
        )
    if len(accounts) != 1:
        raise LinkRefused(f"these credentials reach accounts {numbers}: choose one with --account")
    return accounts[0]


async def link_account(
    *,
    user_id: str,
    mode: TradingMode,
    credentials: BrokerCredentials,
    account_number: str | None,
    nickname: str | None,
    database_url: str,
    settings: BrokerSettings,
) -> tuple[AccountLink, AccountLinked]:
    """Verify, store and build the event; raises `LinkRefused` or `SenexError`."""
    broker_mode = BrokerMode.PAPER if mode is TradingMode.PAPER else BrokerMode.LIVE
    link_settings = settings.model_copy(update={"mode": broker_mode})
    async with BrokerAdapter(link_settings, StaticCredentials({})) as adapter:
        accounts = await adapter.verify_credentials(credentials)
    account = choose_account(accounts, account_number)
    try:
        await migrate(database_url)
    except EventLogError as exc:
        raise ServiceUnavailable(f"cannot prepare the database: {exc}") from None
    vault = await CredentialsVault.open(database_url, settings)
    stored = await vault.store(
        account_number=account.account_number,
        user_id=user_id,
        mode=mode,
        credentials=credentials,
        nickname=nickname or account.nickname,
    )
    event = AccountLinked(
        **Envelopes("cli", SystemClock)(stored.account_number),
        user_id=user_id,
        mode=mode,
        nickname=stored.nickname,
    )
    return stored, event


async def publish_event(event: AccountLinked, nats_url: str, timeout: float) -> None:
    """Publish ``event``; raises TimeoutError or OSError/BusError when NATS is not there."""
    # Bus.connect retries forever; the command waits only ``timeout`` seconds.
    bus = await asyncio.wait_for(Bus.connect(nats_url, "senex-cli"), timeout)
    try:
        await bus.publish(event, timeout=timeout)
    finally:
        await bus.close()


@app.command("link")
def link_command(
    user: Annotated[str, typer.Option("--user", help="The user the account belongs to.")],
    database_url: DatabaseUrl,
    paper: Annotated[
        bool,
        typer.Option("--paper", help="Link a simulator account (default: its default customer)."),
    ] = False,
    client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--client-secret-stdin",
            help="Read the OAuth client secret (line 1) and refresh token (line 2) from stdin.",
        ),
    ] = False,
    account: Annotated[
        str | None,
        typer.Option("--account", help="Account number (needed when the login has several)."),
    ] = None,
    nickname: Annotated[str | None, typer.Option("--nickname", help="A display name.")] = None,
    nats_url: Annotated[
        str, typer.Option("--nats-url", envvar="NATS_URL", help="NATS server.")
    ] = "nats://127.0.0.1:4222",
    publish_timeout: Annotated[
        float, typer.Option("--publish-timeout", help="Seconds to wait for NATS.")
    ] = 5.0,
) -> None:
    """Check credentials with the broker, store them encrypted, publish AccountLinked."""
    if not paper and not client_secret_stdin:
        typer.echo("give --paper or --client-secret-stdin", err=True)
        raise typer.Exit(EXIT_REFUSED)
    settings = BrokerSettings()
    try:
        if client_secret_stdin:
            credentials = read_stdin_credentials(sys.stdin.read())
        else:
            credentials = BrokerCredentials(
                client_secret=settings.paper_client_secret,
                refresh_token=settings.paper_refresh_token,
            )
        mode = TradingMode.PAPER if paper else TradingMode.LIVE
        stored, event = asyncio.run(
            link_account(
                user_id=user,
                mode=mode,
                credentials=credentials,
                account_number=account,
                nickname=nickname,
                database_url=database_url,
                settings=settings,
            )
        )
    except LinkRefused as exc:
        typer.echo(f"not linked: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    except (BrokerUnavailable, BrokerTimeout, ServiceUnavailable) as exc:
        typer.echo(f"not linked: {exc.message}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except SenexError as exc:
        typer.echo(f"not linked ({exc.kind.value}): {exc.message}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    typer.echo(f"linked {stored.account_number} ({stored.mode.value}) to user {stored.user_id}")
    try:
        asyncio.run(publish_event(event, nats_url, publish_timeout))
    except (TimeoutError, OSError, SenexError) as exc:
        typer.echo(
            f"AccountLinked was NOT published ({type(exc).__name__}): services will not trade "
            f"{stored.account_number} until it is. The link is stored; run this command "
            "again once NATS is up.",
            err=True,
        )
        raise typer.Exit(EXIT_NOT_PUBLISHED) from None
    typer.echo(f"published AccountLinked {event.event_id}")


@app.command("list")
def list_command(
    database_url: DatabaseUrl,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's links.")] = None,
) -> None:
    """List linked accounts (never their credentials)."""

    async def links() -> list[AccountLink]:
        vault = await CredentialsVault.open(database_url, BrokerSettings())
        return await vault.links(user)

    try:
        found = asyncio.run(links())
    except SenexError as exc:
        typer.echo(f"cannot list links: {exc.message}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    for link in found:
        name = f" {link.nickname}" if link.nickname else ""
        typer.echo(f"{link.account_number}\t{link.mode.value}\t{link.user_id}{name}")
