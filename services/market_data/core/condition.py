"""Daily closes and the market condition (Bollinger bands, stress) of an underlying.

DOMAIN.md 3: bands over the last 19 completed daily closes and the current price;
stressed when the pluggable detector says so (today: price at or below the lower band).
A `MarketConditionChanged` is due the first time and whenever the band position or the
stressed status changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from libs.contracts.market import BandPosition, BollingerBands
from libs.indicators.bands import (
    StressDetector,
    band_position,
    bollinger,
    price_at_or_below_lower_band,
)

#: Completed sessions the bands use (the 20th value is the current price).
CLOSES_NEEDED = 19


class DailyCloses:
    """Daily closes of one underlying; candles are upserts by session day."""

    def __init__(self) -> None:
        self._by_day: dict[date, Decimal] = {}

    def upsert(self, day: date, close: Decimal) -> None:
        """Record (or replace) the close of ``day``."""
        self._by_day[day] = close

    def window(self, today: date, count: int = CLOSES_NEEDED) -> tuple[Decimal, ...]:
        """The last ``count`` closes of sessions before ``today``, oldest first (maybe fewer)."""
        days = sorted(d for d in self._by_day if d < today)[-count:]
        return tuple(self._by_day[d] for d in days)

    def __len__(self) -> int:
        return len(self._by_day)


@dataclass(frozen=True)
class Condition:
    """Bands, position and stress at one price."""

    price: Decimal
    bands: BollingerBands
    band_position: BandPosition
    stressed: bool
    stressed_reason: str | None


def evaluate(
    closes: tuple[Decimal, ...],
    price: Decimal,
    detector: StressDetector = price_at_or_below_lower_band,
) -> Condition:
    """The condition at ``price`` over ``closes`` (oldest first)."""
    bands = bollinger(closes, price)
    stressed = detector(price, bands)
    reason = (
        f"price {price} at or below the lower band {bands.lower.quantize(Decimal('0.01'))}"
        if stressed
        else None
    )
    return Condition(
        price=price,
        bands=bands,
        band_position=band_position(price, bands),
        stressed=stressed,
        stressed_reason=reason,
    )


def is_change(previous: Condition | None, current: Condition) -> bool:
    """Whether ``current`` is worth an event: the first one, or a new position or stress."""
    return (
        previous is None
        or previous.band_position is not current.band_position
        or previous.stressed != current.stressed
    )
