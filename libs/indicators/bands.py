"""Bollinger bands and the market condition (DOMAIN.md 1 and 3).

Bands: 20 periods = the last 19 daily closes + the current price, mean +/- 2 sample
standard deviations, computed on Decimal at 28 significant digits (the default
context). Comparisons use these unrounded values; only rendering rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext

from libs.contracts.market import BandPosition, BollingerBands

STD_DEVS = Decimal(2)

#: A stress detector: (price, bands) -> stressed? Pluggable so VIX level and realised
#: volatility can join later (DOMAIN.md 3).
StressDetector = Callable[[Decimal, BollingerBands], bool]


def bollinger(closes: Sequence[Decimal], price: Decimal) -> BollingerBands:
    """Bands over ``closes`` (oldest first) followed by the current ``price``."""
    window = [*closes, price]
    n = len(window)
    if n < 2:
        raise ValueError("bands need at least two values")
    with localcontext() as ctx:
        ctx.prec = 28
        mean = sum(window, Decimal(0)) / n
        variance = sum(((x - mean) ** 2 for x in window), Decimal(0)) / (n - 1)
        spread = STD_DEVS * variance.sqrt()
        return BollingerBands(
            period=n,
            std_devs=STD_DEVS,
            lower=mean - spread,
            middle=mean,
            upper=mean + spread,
        )


def band_position(price: Decimal, bands: BollingerBands) -> BandPosition:
    """Where ``price`` sits; touching a band counts as at it (DOMAIN.md 1)."""
    if price >= bands.upper:
        return BandPosition.AT_OR_ABOVE_UPPER
    if price <= bands.lower:
        return BandPosition.AT_OR_BELOW_LOWER
    return BandPosition.INSIDE


def price_at_or_below_lower_band(price: Decimal, bands: BollingerBands) -> bool:
    """Today's stress detector: the current price is at or below the lower band."""
    return price <= bands.lower
