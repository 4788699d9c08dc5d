"""Settings from the environment (pydantic-settings), shared by every process."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TradingMode(StrEnum):
    """Paper trades against the local simulator; live against the real broker."""

    PAPER = "paper"
    LIVE = "live"


#: Default Prometheus/health port of each process, so Prometheus can scrape a fixed target.
DEFAULT_METRICS_PORTS: dict[str, int] = {
    "market_data": 9101,
    "strategy": 9102,
    "risk": 9103,
    "execution": 9104,
    "position_monitor": 9105,
    "gateway": 9106,
    "audit": 9107,
}


class Settings(BaseSettings):
    """Process settings. Unprefixed NATS_URL/DATABASE_URL, everything else ``SENEX_*``."""

    model_config = SettingsConfigDict(env_prefix="SENEX_", extra="ignore", frozen=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "SENEX_NATS_URL"),
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/senex",
        validation_alias=AliasChoices("DATABASE_URL", "SENEX_DATABASE_URL"),
    )
    mode: TradingMode = TradingMode.PAPER
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    metrics_host: str = "127.0.0.1"
    #: 0 means the service's default from DEFAULT_METRICS_PORTS.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    #: Seconds a stopping service waits for in-flight work before exiting.
    shutdown_grace_s: float = Field(default=10.0, gt=0)
    #: The broker simulator; in paper mode business time follows its clock when set.
    simulator_url: str | None = None
    #: Stream messages the audit recorder commits per transaction.
    audit_batch_size: int = Field(default=1000, ge=1, le=10_000)
    #: Copies JetStream keeps of each stream (3 on a three-node NATS cluster).
    stream_replicas: int = Field(default=1, ge=1, le=5)
    #: This process among the replicas of its service (unique; default host name and pid).
    replica_id: str | None = Field(default=None, min_length=1, max_length=64)
    #: Seconds a partition lease outlives its holder's last refresh (see libs.runtime.leases).
    lease_ttl_s: float = Field(default=6.0, ge=1.5, le=300)
    #: Seconds between lease refreshes; at most a third of the ttl.
    lease_tick_s: float = Field(default=1.0, ge=0.1, le=100)
    #: Seconds a service waits for its own published events to come back through its fold.
    fold_timeout_s: float = Field(default=15.0, gt=0)
    #: Fallback risk-free rate when the broker offers none (DOMAIN.md section 3).
    risk_free_rate: Decimal = Field(default=Decimal("0.045"), ge=0, le=1)

    def metrics_port_for(self, service: str) -> int:
        """The port ``service`` serves /health and /metrics on."""
        return self.metrics_port or DEFAULT_METRICS_PORTS.get(service, 9100)
