"""The vault key: from settings, or a key file created 0600 on first use and checked after."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from libs.broker.settings import BrokerSettings
from libs.broker.vault import VaultError, load_or_create_key_file, vault_key


def test_key_file_is_created_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "vault.key"
    key = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(key)


def test_key_file_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    assert load_or_create_key_file(path) == load_or_create_key_file(path)


def test_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    load_or_create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        load_or_create_key_file(path)


def test_garbage_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(VaultError, match="valid Fernet key"):
        load_or_create_key_file(path)


def test_key_from_settings_wins_over_the_file(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    settings = BrokerSettings(vault_key=SecretStr(key.decode()), vault_key_file=tmp_path / "k")
    assert vault_key(settings) == key
    assert not (tmp_path / "k").exists()


def test_bad_key_in_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VaultError):
        vault_key(BrokerSettings(vault_key=SecretStr("short")))


def test_settings_repr_hides_the_key() -> None:
    key = Fernet.generate_key().decode()
    assert key not in repr(BrokerSettings(vault_key=SecretStr(key)))


def test_mode_follows_the_process_wide_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENEX_BROKER_MODE", raising=False)
    monkeypatch.setenv("SENEX_MODE", "live")
    assert BrokerSettings().mode.value == "live"
    monkeypatch.setenv("SENEX_BROKER_MODE", "paper")
    assert BrokerSettings().mode.value == "paper"
