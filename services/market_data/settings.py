"""The market-data service's own settings (``SENEX_MARKET_DATA_*``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MarketDataSettings(BaseSettings):
    """Cadences, windows and the account whose broker session feeds market data."""

    model_config = SettingsConfigDict(env_prefix="SENEX_MARKET_DATA_", extra="ignore", frozen=True)

    #: The linked account whose session streams quotes; unset = the first linked account
    #: (or, in paper mode with none linked, the simulator's default customer).
    account: str | None = None
    #: Underlyings quoted, banded and kept warm.
    underlyings: tuple[str, ...] = ("QQQ", "SPY")
    #: Real seconds between two QuoteReceived of one symbol (latest wins).
    quote_publish_interval_s: float = Field(default=1.0, ge=0)
    #: Business seconds without a quote, market open, before a watched symbol is stale.
    stale_after_s: int = Field(default=60, ge=1)
    #: Business seconds between band recomputations (market open only).
    bands_interval_s: float = Field(default=30.0, gt=0)
    #: Business seconds between balance polls.
    balances_interval_s: float = Field(default=30.0, gt=0)
    #: Business seconds between option-chain refreshes (also at a new New York date).
    chain_refresh_s: float = Field(default=900.0, gt=0)
    #: Business seconds between IV-rank and risk-free-rate refreshes.
    metrics_refresh_s: float = Field(default=300.0, gt=0)
    #: The strategy's default window, kept subscribed so its snapshots are warm.
    default_min_dte: int = Field(default=30, ge=0)
    default_max_dte: int = Field(default=50, ge=0)
    default_strike_range: Decimal = Field(default=Decimal(20), gt=0)
    #: Extra strikes either side of the default window, so a drifting mid stays warm.
    window_margin: Decimal = Field(default=Decimal(5), ge=0)
    #: Business seconds a strike subscribed for a snapshot outside the window stays watched.
    snapshot_lease_s: int = Field(default=900, ge=10)
    #: Calendar days of daily candles asked for (19 sessions need ~27 days; holidays).
    candle_history_days: int = Field(default=45, ge=30)
    #: Real seconds between passes of the scheduler loop (business time is compared
    #: against the injected clock on every pass, so a manual clock is followed closely).
    tick_s: float = Field(default=0.2, gt=0)
    #: Real seconds between attempts to find credentials when none are usable.
    credentials_retry_s: float = Field(default=5.0, gt=0)
