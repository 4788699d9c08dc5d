"""Broker settings from the environment (``SENEX_BROKER_*``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.runtime.settings import TradingMode

#: The simulator's default customer (services/simulator/customers.py); the broker library
#: must not import a service, so the pair is repeated here as the paper default.
DEFAULT_PAPER_CLIENT_SECRET = "senex-paper-secret"  # noqa: S105 - public simulator credential
DEFAULT_PAPER_REFRESH_TOKEN = "senex-paper-refresh"  # noqa: S105 - public simulator credential


class BrokerSettings(BaseSettings):
    """How the adapter reaches the broker and where the vault key lives.

    ``mode`` is the one switch between the real broker and the simulator; it reads
    ``SENEX_BROKER_MODE`` and falls back to the process-wide ``SENEX_MODE``.
    """

    model_config = SettingsConfigDict(
        env_prefix="SENEX_BROKER_", extra="ignore", frozen=True, populate_by_name=True
    )

    mode: TradingMode = Field(
        default=TradingMode.PAPER,
        validation_alias=AliasChoices("SENEX_BROKER_MODE", "SENEX_MODE"),
    )
    #: Where paper mode sends every request (REST and websockets).
    #: (8765 is `senex sim`'s default port, so paper mode finds `make run`'s simulator.)
    simulator_url: str = "http://127.0.0.1:8765"
    #: Seconds to wait for any one HTTP exchange before reporting BROKER_TIMEOUT.
    request_timeout_s: float = Field(default=10.0, gt=0)
    #: Refresh the OAuth access token this many seconds before it expires.
    refresh_margin_s: float = Field(default=120.0, ge=0)
    #: Used when the broker offers no risk-free rate (DOMAIN.md section 3).
    fallback_risk_free_rate: Decimal = Field(default=Decimal("0.045"), ge=0, le=1)
    #: Fernet key (urlsafe base64, 32 bytes); when unset the key file is used.
    vault_key: SecretStr | None = None
    #: Key file, created with mode 0600 on first use when ``vault_key`` is unset.
    vault_key_file: Path = Path(".senex/vault.key")
    #: Credentials `senex account link --paper` stores: the simulator's default customer.
    paper_client_secret: SecretStr = SecretStr(DEFAULT_PAPER_CLIENT_SECRET)
    paper_refresh_token: SecretStr = SecretStr(DEFAULT_PAPER_REFRESH_TOKEN)
