"""The credentials vault: broker OAuth secrets encrypted at rest in Postgres.

Encryption is `cryptography`'s Fernet (AES-128-CBC with HMAC-SHA256, random IV). The
key comes from ``SENEX_BROKER_VAULT_KEY`` or from a key file created on first use with
mode 0600 (refused later if group or others can read it). The plaintext is a JSON
object holding the account number beside the secrets; decryption checks it, so a
ciphertext moved onto another account's row is refused. Secrets leave this module only
inside `BrokerCredentials`, whose repr hides them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet, InvalidToken
from psycopg.rows import dict_row
from pydantic import SecretStr

from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.contracts.account import TradingMode
from libs.contracts.errors import InternalError, InvalidState, NotFound, ServiceUnavailable


class VaultError(InternalError):
    """The vault cannot be used: bad key, unreadable key file, undecryptable row."""


@dataclass(frozen=True, slots=True)
class AccountLink:
    """A stored link: who owns the account and how it trades (no secrets)."""

    account_number: str
    user_id: str
    mode: TradingMode
    nickname: str | None
    linked_at: datetime
    updated_at: datetime


def key_id(key: bytes) -> str:
    """A short, non-secret fingerprint of a Fernet key."""
    return hashlib.sha256(key).hexdigest()[:16]


def load_or_create_key_file(path: Path) -> bytes:
    """The Fernet key in ``path``, creating it (mode 0600, exclusive) when missing.

    Blocking file I/O: async callers run it in a thread (`CredentialsVault.open`).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    except OSError as exc:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            return load_or_create_key_file(path)
        raise VaultError(f"cannot create the vault key file {path}: {exc.strerror}") from None
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VaultError(
            f"vault key file {path} is accessible to group or others "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    key = path.read_bytes().strip()
    _check_key(key, str(path))
    return key


def _check_key(key: bytes, source: str) -> None:
    try:
        Fernet(key)
    except ValueError:
        raise VaultError(f"{source} does not hold a valid Fernet key") from None


def vault_key(settings: BrokerSettings) -> bytes:
    """The key from settings, else from the key file (blocking; see `load_or_create_key_file`)."""
    if settings.vault_key is not None:
        key = settings.vault_key.get_secret_value().strip().encode()
        _check_key(key, "SENEX_BROKER_VAULT_KEY")
        return key
    return load_or_create_key_file(settings.vault_key_file)


_UPSERT = """
INSERT INTO broker_credentials (account_number, user_id, mode, nickname, ciphertext, key_id)
VALUES (%(account)s, %(user)s, %(mode)s, %(nickname)s, %(ciphertext)s, %(key_id)s)
ON CONFLICT (account_number) DO UPDATE
   SET mode = EXCLUDED.mode, nickname = EXCLUDED.nickname, ciphertext = EXCLUDED.ciphertext,
       key_id = EXCLUDED.key_id, updated_at = now()
 WHERE broker_credentials.user_id = EXCLUDED.user_id
RETURNING account_number, user_id, mode, nickname, linked_at, updated_at
"""
_LINK_COLUMNS = "account_number, user_id, mode, nickname, linked_at, updated_at"


class CredentialsVault:
    """Stores and returns broker credentials per account; implements `CredentialsSource`."""

    def __init__(self, dsn: str, key: bytes, *, mode: TradingMode | None = None) -> None:
        """``mode``: when set, `credentials_for` refuses links made for the other mode."""
        _check_key(key, "the vault key")
        self._dsn = dsn
        self._mode = mode
        self._fernet = Fernet(key)
        self._key_id = key_id(key)

    def __repr__(self) -> str:
        return f"CredentialsVault(key_id={self._key_id})"

    @classmethod
    async def open(cls, dsn: str, settings: BrokerSettings) -> CredentialsVault:
        """A vault on ``dsn`` with the configured key (key file I/O off the event loop)."""
        key = await asyncio.to_thread(vault_key, settings)
        return cls(dsn, key, mode=TradingMode(settings.mode.value.upper()))

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(f"the vault database is unreachable: {exc}") from None

    def _encrypt(self, account_number: str, credentials: BrokerCredentials) -> bytes:
        plain = json.dumps(
            {
                "account_number": account_number,
                "client_secret": credentials.client_secret.get_secret_value(),
                "refresh_token": credentials.refresh_token.get_secret_value(),
            }
        ).encode()
        return self._fernet.encrypt(plain)

    def _decrypt(self, account_number: str, ciphertext: bytes) -> BrokerCredentials:
        try:
            plain = json.loads(self._fernet.decrypt(ciphertext))
        except InvalidToken:
            raise VaultError(
                f"the credentials of {account_number} cannot be decrypted with this key"
            ) from None
        if plain.get("account_number") != account_number:
            raise VaultError(f"the stored credentials of {account_number} belong to another row")
        return BrokerCredentials(
            client_secret=SecretStr(plain["client_secret"]),
            refresh_token=SecretStr(plain["refresh_token"]),
        )

    async def store(
        self,
        *,
        account_number: str,
        user_id: str,
        mode: TradingMode,
        credentials: BrokerCredentials,
        nickname: str | None = None,
    ) -> AccountLink:
        """Link ``account_number`` to ``user_id`` with ``credentials`` (replacing older ones).

        INVALID_STATE when another user already linked the account.
        """
        ciphertext = self._encrypt(account_number, credentials)
        params = {
            "account": account_number,
            "user": user_id,
            "mode": mode.value,
            "nickname": nickname,
            "ciphertext": ciphertext,
            "key_id": self._key_id,
        }
        async with await self._connect() as conn:
            row = await (await conn.execute(_UPSERT, params)).fetchone()
        if row is None:
            raise InvalidState(f"account {account_number} is linked to another user")
        return _link(row)

    async def credentials_for(self, account_number: str) -> BrokerCredentials:
        """The decrypted credentials (NOT_FOUND when the account is not linked).

        INVALID_STATE when the link was made for the other mode: paper credentials are
        never sent to the real broker, nor live ones to the simulator.
        """
        async with await self._connect() as conn:
            cur = await conn.execute(
                "SELECT ciphertext, mode FROM broker_credentials WHERE account_number = %s",
                (account_number,),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"account {account_number} is not linked")
        if self._mode is not None and row["mode"] != self._mode.value:
            raise InvalidState(
                f"account {account_number} is linked for {row['mode']} trading, "
                f"but the broker is in {self._mode.value} mode"
            )
        return self._decrypt(account_number, bytes(row["ciphertext"]))

    async def link(self, account_number: str) -> AccountLink:
        """The link of ``account_number`` (NOT_FOUND when missing)."""
        async with await self._connect() as conn:
            cur = await conn.execute(
                f"SELECT {_LINK_COLUMNS} FROM broker_credentials WHERE account_number = %s",
                (account_number,),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"account {account_number} is not linked")
        return _link(row)

    async def links(self, user_id: str | None = None) -> list[AccountLink]:
        """Every link, or those of ``user_id``, by account number."""
        query = f"SELECT {_LINK_COLUMNS} FROM broker_credentials"
        params: tuple[str, ...] = ()
        if user_id is not None:
            query += " WHERE user_id = %s"
            params = (user_id,)
        async with await self._connect() as conn:
            cur = await conn.execute(query + " ORDER BY account_number", params)
            rows = await cur.fetchall()
        return [_link(row) for row in rows]

    async def remove(self, account_number: str) -> bool:
        """Delete the link and its credentials; False when there was none."""
        async with await self._connect() as conn:
            cur = await conn.execute(
                "DELETE FROM broker_credentials WHERE account_number = %s", (account_number,)
            )
            return cur.rowcount > 0


def _link(row: dict[str, Any]) -> AccountLink:
    return AccountLink(
        account_number=row["account_number"],
        user_id=row["user_id"],
        mode=TradingMode(row["mode"]),
        nickname=row["nickname"],
        linked_at=row["linked_at"],
        updated_at=row["updated_at"],
    )
