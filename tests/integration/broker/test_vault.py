"""The credentials vault on a real PostgreSQL: encrypted at rest, bound to its row."""

from __future__ import annotations

import psycopg
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from libs.broker.models import BrokerCredentials
from libs.broker.vault import CredentialsVault, VaultError
from libs.contracts.account import TradingMode
from libs.contracts.errors import InvalidState, NotFound
from libs.eventlog.migrate import migrate

SECRET = "client-secret-xyz"
REFRESH = "refresh-token-xyz"
CREDENTIALS = BrokerCredentials(client_secret=SecretStr(SECRET), refresh_token=SecretStr(REFRESH))


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture(scope="module")
def key() -> bytes:
    return Fernet.generate_key()


async def store(vault: CredentialsVault, account: str, user: str = "alice") -> None:
    await vault.store(
        account_number=account, user_id=user, mode=TradingMode.PAPER, credentials=CREDENTIALS
    )


async def test_stored_credentials_come_back(dsn: str, key: bytes) -> None:
    vault = CredentialsVault(dsn, key)
    await store(vault, "5WT00001")
    back = await vault.credentials_for("5WT00001")
    assert back.client_secret.get_secret_value() == SECRET
    assert back.refresh_token.get_secret_value() == REFRESH
    link = await vault.link("5WT00001")
    assert (link.user_id, link.mode) == ("alice", TradingMode.PAPER)


async def test_nothing_readable_is_stored(dsn: str, key: bytes) -> None:
    await store(CredentialsVault(dsn, key), "5WT00002")
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT * FROM broker_credentials WHERE account_number = '5WT00002'"
        )
        row = await cur.fetchone()
    assert row is not None
    text = repr(row).encode() + b"".join(bytes(v) for v in row if isinstance(v, bytes | memoryview))
    assert SECRET.encode() not in text
    assert REFRESH.encode() not in text


async def test_relinking_by_the_same_user_replaces_the_credentials(dsn: str, key: bytes) -> None:
    vault = CredentialsVault(dsn, key)
    await store(vault, "5WT00003")
    rotated = BrokerCredentials(client_secret=SecretStr(SECRET), refresh_token=SecretStr("new"))
    await vault.store(
        account_number="5WT00003", user_id="alice", mode=TradingMode.PAPER, credentials=rotated
    )
    back = await vault.credentials_for("5WT00003")
    assert back.refresh_token.get_secret_value() == "new"


async def test_another_users_account_cannot_be_taken_over(dsn: str, key: bytes) -> None:
    vault = CredentialsVault(dsn, key)
    await store(vault, "5WT00004", user="alice")
    with pytest.raises(InvalidState):
        await store(vault, "5WT00004", user="bob")
    assert (await vault.link("5WT00004")).user_id == "alice"


async def test_unlinked_account_is_not_found(dsn: str, key: bytes) -> None:
    with pytest.raises(NotFound):
        await CredentialsVault(dsn, key).credentials_for("5WT09999")


async def test_a_different_key_cannot_decrypt(dsn: str, key: bytes) -> None:
    await store(CredentialsVault(dsn, key), "5WT00005")
    with pytest.raises(VaultError, match="cannot be decrypted"):
        await CredentialsVault(dsn, Fernet.generate_key()).credentials_for("5WT00005")


async def test_a_ciphertext_moved_to_another_row_is_refused(dsn: str, key: bytes) -> None:
    vault = CredentialsVault(dsn, key)
    await store(vault, "5WT00006")
    await store(vault, "5WT00007")
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute(
            "UPDATE broker_credentials SET ciphertext = (SELECT ciphertext FROM "
            "broker_credentials WHERE account_number = '5WT00006') "
            "WHERE account_number = '5WT00007'"
        )
    with pytest.raises(VaultError, match="another row"):
        await vault.credentials_for("5WT00007")


async def test_a_link_for_the_other_mode_is_refused(dsn: str, key: bytes) -> None:
    await store(CredentialsVault(dsn, key), "5WT00008")
    with pytest.raises(InvalidState, match="PAPER"):
        await CredentialsVault(dsn, key, mode=TradingMode.LIVE).credentials_for("5WT00008")


async def test_links_list_by_user_and_remove(dsn: str, key: bytes) -> None:
    vault = CredentialsVault(dsn, key)
    await store(vault, "5WT00010", user="carol")
    await store(vault, "5WT00011", user="carol")
    assert [link.account_number for link in await vault.links("carol")] == ["5WT00010", "5WT00011"]
    assert await vault.remove("5WT00010")
    assert not await vault.remove("5WT00010")
    assert [link.account_number for link in await vault.links("carol")] == ["5WT00011"]
