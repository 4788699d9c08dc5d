"""Market context: quotes, Bollinger bands and market condition, feed health.

Every event here is market-wide (``account_id`` null) and published on
``senex.md.<symbol>.<Type>``.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from libs.contracts.base import (
    AwareDatetime,
    ContractModel,
    FiniteDecimal,
    NonNegativeMoney,
    Ticker,
)
from libs.contracts.envelope import MarketEvent
from libs.contracts.symbols import MarketSymbol

_TWO = Decimal(2)


class Quote(ContractModel):
    """One symbol's best bid and ask at a moment; decisions embed the quotes they used."""

    symbol: MarketSymbol
    bid: NonNegativeMoney
    ask: NonNegativeMoney
    quoted_at: AwareDatetime
    """Time of the quote at its source."""

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2, exact."""
        return (self.bid + self.ask) / _TWO

    @property
    def is_two_sided(self) -> bool:
        """Both a bid and an ask above zero."""
        return self.bid > 0 and self.ask > 0


class Greeks(ContractModel):
    """Delta, gamma, theta, vega (from vollib); for a position, signed and summed."""

    delta: FiniteDecimal
    gamma: FiniteDecimal
    theta: FiniteDecimal
    vega: FiniteDecimal


class BollingerBands(ContractModel):
    """Bands over ``period`` values (the last closes + the current price) at ``std_devs``."""

    period: int = Field(default=20, ge=2)
    std_devs: FiniteDecimal = Field(default=Decimal(2), gt=0)
    lower: FiniteDecimal
    middle: FiniteDecimal
    upper: FiniteDecimal

    @model_validator(mode="after")
    def _ordered(self) -> BollingerBands:
        if not self.lower <= self.middle <= self.upper:
            raise ValueError("bands must satisfy lower <= middle <= upper")
        return self


class BandPosition(StrEnum):
    """Where the price sits relative to the bands (DOMAIN.md 1: at a band counts)."""

    INSIDE = "INSIDE"
    AT_OR_ABOVE_UPPER = "AT_OR_ABOVE_UPPER"
    AT_OR_BELOW_LOWER = "AT_OR_BELOW_LOWER"


class QuoteReceived(MarketEvent):
    """A new best bid/ask for an underlying or an option."""

    type: Literal["QuoteReceived"] = "QuoteReceived"
    bid: NonNegativeMoney
    ask: NonNegativeMoney
    bid_size: int | None = Field(default=None, ge=0)
    ask_size: int | None = Field(default=None, ge=0)
    quoted_at: AwareDatetime
    """Time of the quote at its source (``occurred_at`` is when we received it)."""

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2, exact."""
        return (self.bid + self.ask) / _TWO


class MarketConditionChanged(MarketEvent):
    """Recomputed Bollinger bands and stress for an underlying (every 30 s in market hours)."""

    type: Literal["MarketConditionChanged"] = "MarketConditionChanged"
    symbol: Ticker
    """The underlying."""
    price: NonNegativeMoney
    """The current intraday price, the last value of the band window."""
    bands: BollingerBands
    band_position: BandPosition
    stressed: bool
    """Stressed market (price <= lower band today; the detector is pluggable)."""
    stressed_reason: str | None = None
    """Why the detector judged the market stressed, for the audit."""


class MarketDataStale(MarketEvent):
    """No fresh quote for ``symbol`` within the allowed age; decisions must not use it."""

    type: Literal["MarketDataStale"] = "MarketDataStale"
    last_quote_at: AwareDatetime | None
    """When the last quote arrived; null if none ever did."""
    max_age_seconds: int = Field(ge=1)
    """The age beyond which a quote counts as stale."""
    reason: str = Field(min_length=1)
    """What the market-data service observed (feed disconnected, no updates...)."""


class MarketDataRecovered(MarketEvent):
    """Quotes for ``symbol`` are fresh again."""

    type: Literal["MarketDataRecovered"] = "MarketDataRecovered"
    stale_since: AwareDatetime
    """When the symbol went stale (the matching MarketDataStale's occurred_at)."""
