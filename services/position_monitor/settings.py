"""Position-monitor settings from the environment: the SMTP server (``SENEX_SMTP_*``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmtpSecurity(StrEnum):
    """How the connection to the SMTP server is protected."""

    NONE = "none"
    """Plain text (a local relay or a test server only)."""
    STARTTLS = "starttls"
    """Upgrade a plain connection with STARTTLS (required; usually port 587)."""
    SSL = "ssl"
    """TLS from the first byte (implicit TLS; usually port 465)."""


class SmtpSettings(BaseSettings):
    """The SMTP server e-mails go through, and the notifier's retry and queue limits.

    Retry waits are transport timers: real time, not business time (DOMAIN.md 8).
    """

    model_config = SettingsConfigDict(env_prefix="SENEX_SMTP_", extra="ignore", frozen=True)

    enabled: bool = True
    """False: e-mail notifications are logged and counted as skipped, never sent."""
    host: str = "127.0.0.1"
    port: int = Field(default=587, ge=1, le=65535)
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    validate_certs: bool = True
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(default="senex@localhost", min_length=3)
    """The From address."""
    recipient: str | None = None
    """Fallback To address for accounts whose user has no known address."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Per SMTP operation."""
    max_attempts: int = Field(default=8, ge=1, le=100)
    """Sending attempts per e-mail before giving up (with exponential backoff between)."""
    backoff_initial_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    queue_size: int = Field(default=1000, ge=1)
    """E-mails waiting to be sent; beyond this new ones are refused (logged, counted)."""

    @model_validator(mode="after")
    def _credentials_pair(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("SENEX_SMTP_USERNAME and SENEX_SMTP_PASSWORD go together")
        return self


class MonitorSettings(BaseSettings):
    """The monitor's cadences (``SENEX_MONITOR_*``).

    Real-time intervals (``*_s``) are transport timers; business intervals (the sync,
    the quote lease) follow the injected clock (DOMAIN.md 8).
    """

    model_config = SettingsConfigDict(env_prefix="SENEX_MONITOR_", extra="ignore", frozen=True)

    tick_s: float = Field(default=0.5, gt=0)
    """Real seconds between two passes of the decision loop (events also wake it)."""
    quote_poll_s: float = Field(default=2.0, gt=0)
    """Real seconds between two GetQuotes of the open positions' options."""
    lease_seconds: int = Field(default=3600, ge=10)
    """Business seconds of each WatchSymbols lease (renewed at half-life)."""
    sync_interval_s: float = Field(default=180.0, gt=0)
    """Business seconds between two broker syncs of an account."""
    sync_settle_s: float = Field(default=3.0, ge=0)
    """Real seconds before a finding is confirmed by a second read (a fill in flight
    makes the broker differ for a moment)."""
