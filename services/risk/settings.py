"""The risk service's own settings (``SENEX_RISK_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RiskSettings(BaseSettings):
    """Timeouts and retries of what the risk service asks of others."""

    model_config = SettingsConfigDict(env_prefix="SENEX_RISK_", extra="ignore", frozen=True)

    #: Real seconds to wait for market data's condition of an underlying on approval;
    #: without an answer the unstressed (lower) tolerance is used.
    market_condition_timeout_s: float = Field(default=2.0, gt=0)
    #: Attempts at the broker's dry run when it fails transiently (timeout, 429, 5xx).
    dry_run_attempts: int = Field(default=3, ge=1, le=5)
    #: Real seconds between those attempts (the last value repeats).
    dry_run_backoff_s: tuple[float, ...] = (0.5, 1.0)
    #: Underlyings whose last market condition is looked up at start for the budget view.
    underlyings: tuple[str, ...] = ("QQQ", "SPY")
