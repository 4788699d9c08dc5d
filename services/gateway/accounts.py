"""Accounts, links and settings: the user-facing configuration the gateway owns.

- Links live in the credentials vault of ``libs/broker`` (account, user, paper/live,
  encrypted secrets). The gateway reads who owns which account from there and writes
  new links only after the broker (or the simulator) accepted the credentials, then
  publishes ``AccountLinked`` (never a secret).
- Settings are a whole `AccountSettings` snapshot per account in
  ``gateway_account_settings``, published as ``AccountSettingsChanged``. The row and the
  event change together: the row is written in a transaction that commits only after
  the bus acknowledged the event.
- Paper mode: a user gets a simulator customer of their own (``POST /sim/customers``),
  so two users trade side by side without seeing each other's accounts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerAccount, BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.vault import AccountLink, CredentialsVault
from libs.contracts.account import (
    AccountLinked,
    AccountSettings,
    AccountSettingsChanged,
    TradingMode,
)
from libs.contracts.envelope import Event
from libs.contracts.errors import (
    AuthFailed,
    BrokerUnavailable,
    NotFound,
    ValidationFailed,
)
from libs.contracts.risk import RiskTemplate
from libs.runtime.clock import SystemClock
from libs.runtime.envelopes import Envelopes
from libs.runtime.settings import TradingMode as SystemMode
from services.gateway.db import Pool
from services.gateway.errors import CredentialsRefused

PRODUCER = "gateway"
#: What a newly linked account starts with (the same default every service assumes).
DEFAULT_SETTINGS = AccountSettings(risk_template=RiskTemplate.CONSERVATIVE)

Publish = Callable[[Event], Awaitable[Any]]


def validate_settings(settings: AccountSettings) -> AccountSettings:
    """Rules beyond the contract's types; VALIDATION_ERROR naming the field.

    At least one underlying must be enabled: with none, the account could neither
    generate nor automate, which is never what a user means (turn automation off).
    """
    if not settings.underlyings:
        raise ValidationFailed(
            "underlyings: enable at least one underlying (QQQ, SPY)", field="underlyings"
        )
    return settings


def link_mode(mode: SystemMode) -> TradingMode:
    """The link mode matching the system's trading mode."""
    return TradingMode.PAPER if mode is SystemMode.PAPER else TradingMode.LIVE


def choose_account(accounts: Sequence[BrokerAccount], wanted: str | None) -> BrokerAccount:
    """The account to link: ``wanted``, or the only open one the credentials reach."""
    open_accounts = [a for a in accounts if not a.is_closed]
    if wanted is not None:
        for account in open_accounts:
            if account.account_number == wanted:
                return account
        raise ValidationFailed(
            f"account_number: these credentials do not reach account {wanted}",
            field="account_number",
        )
    if len(open_accounts) != 1:
        numbers = ", ".join(a.account_number for a in open_accounts) or "none"
        raise ValidationFailed(
            f"account_number: these credentials reach {numbers}; choose one",
            field="account_number",
        )
    return open_accounts[0]


@dataclass(frozen=True, slots=True)
class SimulatorCustomer:
    """A customer the simulator created: its credentials and account numbers."""

    credentials: BrokerCredentials
    accounts: tuple[str, ...]


async def create_simulator_customer(
    simulator_url: str, name: str, *, timeout_s: float = 10.0
) -> SimulatorCustomer:
    """A new simulator customer with one account (paper mode's per-user broker login)."""
    try:
        async with httpx2.AsyncClient(base_url=simulator_url, trust_env=False) as client:
            response = await client.post(
                "/sim/customers", json={"name": name, "accounts": 1}, timeout=timeout_s
            )
    except httpx2.HTTPError as exc:
        raise BrokerUnavailable(
            f"the simulator at {simulator_url} is unreachable: {type(exc).__name__}"
        ) from None
    if response.status_code != 201:
        raise BrokerUnavailable(
            f"the simulator refused to create a customer (HTTP {response.status_code})"
        )
    body = response.json()
    return SimulatorCustomer(
        credentials=BrokerCredentials(
            client_secret=SecretStr(body["client-secret"]),
            refresh_token=SecretStr(body["refresh-token"]),
        ),
        accounts=tuple(body["accounts"]),
    )


class SettingsStore:
    """The latest settings per account; changed only together with the event."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get(self, account_number: str) -> AccountSettings | None:
        """The account's settings, None when never set."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT settings FROM gateway_account_settings WHERE account_number = %s",
                (account_number,),
            )
            row = await cur.fetchone()
        return AccountSettings.model_validate(row["settings"]) if row is not None else None

    async def put(
        self,
        *,
        account_number: str,
        user_id: str,
        settings: AccountSettings,
        event: AccountSettingsChanged,
        publish: Publish,
    ) -> None:
        """Store ``settings`` and publish ``event``; neither happens if the publish fails."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO gateway_account_settings (account_number, user_id, settings) "
                "VALUES (%s, %s, %s) ON CONFLICT (account_number) DO UPDATE "
                "SET user_id = EXCLUDED.user_id, settings = EXCLUDED.settings, "
                "updated_at = now()",
                (account_number, user_id, Jsonb(settings.model_dump(mode="json"))),
            )
            await publish(event)


class Accounts:
    """Which accounts a user owns, linking new ones, and their settings."""

    def __init__(
        self,
        *,
        vault: CredentialsVault,
        settings_store: SettingsStore,
        broker_settings: BrokerSettings,
        publish: Publish,
        system_mode: SystemMode,
    ) -> None:
        self._vault = vault
        self._settings = settings_store
        self._broker = broker_settings
        self._publish = publish
        # Every caller gives the instant (the gateway's business clock, a test's start).
        self._envelope = Envelopes(PRODUCER, SystemClock)
        self.mode = link_mode(system_mode)

    async def links(self, user_id: str) -> list[AccountLink]:
        """The user's linked accounts, by account number."""
        return await self._vault.links(user_id)

    async def owned(self, user_id: str, account_number: str) -> AccountLink:
        """The user's link of ``account_number``.

        NOT_FOUND also when the account belongs to someone else: a user cannot tell an
        account of another user from one that does not exist (ids are not probed).
        """
        for link in await self.links(user_id):
            if link.account_number == account_number:
                return link
        raise NotFound(
            f"account {account_number} not found", details={"account_id": account_number}
        )

    async def settings(self, account_number: str) -> AccountSettings:
        """The account's settings (the default until the user changes them)."""
        return await self._settings.get(account_number) or DEFAULT_SETTINGS

    async def change_settings(
        self, user_id: str, account_number: str, settings: AccountSettings, now: datetime
    ) -> AccountSettingsChanged:
        """Validate, store and publish a new settings snapshot."""
        validate_settings(settings)
        event = AccountSettingsChanged(
            **self._envelope(account_number, occurred_at=now),
            user_id=user_id,
            settings=settings,
        )
        await self._settings.put(
            account_number=account_number,
            user_id=user_id,
            settings=settings,
            event=event,
            publish=self._publish,
        )
        return event

    async def verify(self, credentials: BrokerCredentials) -> list[BrokerAccount]:
        """The accounts the broker lets ``credentials`` reach (422 when it refuses them)."""
        async with BrokerAdapter(self._broker, StaticCredentials({})) as adapter:
            try:
                return await adapter.verify_credentials(credentials)
            except AuthFailed as exc:
                raise CredentialsRefused(
                    f"the broker refused these credentials: {exc.message}", field="client_secret"
                ) from None

    async def link(
        self,
        *,
        user_id: str,
        credentials: BrokerCredentials,
        account_number: str | None,
        nickname: str | None,
        now: datetime,
    ) -> AccountLink:
        """Verify with the broker, store in the vault, publish AccountLinked.

        A first link also publishes the default settings, so every service starts the
        account from the same snapshot. INVALID_STATE when another user linked it.
        """
        account = choose_account(await self.verify(credentials), account_number)
        stored = await self._vault.store(
            account_number=account.account_number,
            user_id=user_id,
            mode=self.mode,
            credentials=credentials,
            nickname=nickname or account.nickname,
        )
        linked = AccountLinked(
            **self._envelope(stored.account_number, occurred_at=now),
            user_id=user_id,
            mode=stored.mode,
            nickname=stored.nickname,
        )
        await self._publish(linked)
        if await self._settings.get(stored.account_number) is None:
            event = AccountSettingsChanged(
                **self._envelope(stored.account_number, linked.causation(), occurred_at=now),
                user_id=user_id,
                settings=DEFAULT_SETTINGS,
            )
            await self._settings.put(
                account_number=stored.account_number,
                user_id=user_id,
                settings=DEFAULT_SETTINGS,
                event=event,
                publish=self._publish,
            )
        return stored

    async def link_new_paper_customer(
        self, *, user_id: str, nickname: str | None, now: datetime
    ) -> AccountLink:
        """Paper mode: a simulator customer of the user's own, linked."""
        if self.mode is not TradingMode.PAPER:
            raise ValidationFailed(
                "mode: a simulator customer exists only in paper mode", field="mode"
            )
        customer = await create_simulator_customer(self._broker.simulator_url, user_id)
        return await self.link(
            user_id=user_id,
            credentials=customer.credentials,
            account_number=customer.accounts[0],
            nickname=nickname or f"{user_id} (paper)",
            now=now,
        )
