"""The seeded market: prices, history, an IV surface with put skew and option quotes.

Everything here is a pure function of (seed, symbol, instant, optional price script): the
same inputs give the same quotes, which keeps tests repeatable.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from vollib.black_scholes import black_scholes

from services.simulator import clock

TICK = Decimal("0.01")
#: Calendar days in a year, for option time to expiry.
YEAR_DAYS = 365.0


@dataclass(frozen=True)
class Underlying:
    """Static description of a simulated underlying."""

    symbol: str
    description: str
    base_price: float
    #: Annualised volatility of the daily returns.
    annual_vol: float
    #: Long-run at-the-money implied volatility.
    base_iv: float
    market_cap: Decimal
    beta: Decimal


UNDERLYINGS: dict[str, Underlying] = {
    "QQQ": Underlying(
        "QQQ",
        "INVESCO QQQ TRUST SERIES 1",
        590.0,
        0.20,
        0.20,
        Decimal("360000000000"),
        Decimal("1.1"),
    ),
    "SPY": Underlying(
        "SPY", "SPDR S&P 500 ETF TRUST", 600.0, 0.15, 0.16, Decimal("600000000000"), Decimal("1.0")
    ),
}

#: Persistence of the daily level process; the level is a sum of decayed daily shocks, so
#: any day's close is computed from the last few months only (no path to replay).
_PERSISTENCE = 0.985
_MEMORY_DAYS = 400


@dataclass(frozen=True)
class PricePoint:
    """One point of a scripted price path: from ``at`` on, the price moves toward ``price``."""

    at: datetime
    price: Decimal


def round_tick(value: Decimal | float, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``value`` on the $0.01 grid."""
    return Decimal(str(value)).quantize(TICK, rounding=rounding)


def _unit_normal(seed: int, *key: object) -> float:
    """A standard normal draw fixed by (seed, key)."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    # Not security: a reproducible draw keyed by the seed.
    return random.Random(int.from_bytes(digest, "big")).gauss(0.0, 1.0)  # noqa: S311


@lru_cache(maxsize=65536)
def _daily_shock(seed: int, symbol: str, ordinal: int) -> float:
    return _unit_normal(seed, symbol, "day", ordinal)


@lru_cache(maxsize=8192)
def _log_level(seed: int, symbol: str, ordinal: int) -> float:
    """Log deviation from the base price at the end of calendar day ``ordinal``."""
    sigma = UNDERLYINGS[symbol].annual_vol / math.sqrt(YEAR_DAYS)
    total = 0.0
    weight = 1.0
    for back in range(_MEMORY_DAYS):
        total += weight * _daily_shock(seed, symbol, ordinal - back)
        weight *= _PERSISTENCE
    return sigma * total


def model_close(seed: int, symbol: str, day: date) -> Decimal:
    """The seeded closing price of ``symbol`` on ``day``."""
    spec = UNDERLYINGS[symbol]
    return round_tick(spec.base_price * math.exp(_log_level(seed, symbol, day.toordinal())))


def _intraday_noise(seed: int, symbol: str, day: date, fraction: float) -> float:
    """A smooth bridge from 0 (open) to 0 (close): wiggles without moving the close."""
    total = 0.0
    for k in range(1, 6):
        amp = _unit_normal(seed, symbol, "wiggle", day.toordinal(), k) / k
        total += amp * math.sin(math.pi * k * fraction)
    return total


def model_price(seed: int, symbol: str, at: datetime) -> Decimal:
    """The seeded last price of ``symbol`` at ``at`` (flat outside the session)."""
    session_day = clock.ny_date(at)
    bounds = clock.session_bounds(session_day)
    if bounds is None or at >= bounds[1]:
        return model_close(seed, symbol, clock.last_completed_session(at))
    previous = model_close(seed, symbol, clock.previous_session_before(session_day))
    if at < bounds[0]:
        return previous
    close = model_close(seed, symbol, session_day)
    fraction = (at - bounds[0]) / (bounds[1] - bounds[0])
    sigma_day = UNDERLYINGS[symbol].annual_vol / math.sqrt(252.0)
    log_move = fraction * math.log(float(close) / float(previous))
    log_move += 0.3 * sigma_day * _intraday_noise(seed, symbol, session_day, fraction)
    return round_tick(float(previous) * math.exp(log_move))


def scripted_price(path: list[PricePoint], at: datetime) -> Decimal | None:
    """The price a script gives at ``at``: linear between points, held after the last."""
    points = sorted(path, key=lambda p: p.at)
    if not points or at < points[0].at:
        return None
    for left, right in itertools.pairwise(points):
        if left.at <= at < right.at:
            span = (right.at - left.at).total_seconds()
            share = Decimal(str((at - left.at).total_seconds() / span)) if span else Decimal(1)
            return round_tick(left.price + (right.price - left.price) * share)
    return points[-1].price


def underlying_price(
    seed: int, symbol: str, at: datetime, path: list[PricePoint] | None = None
) -> Decimal:
    """The last price: a script wins from its first point on, else the seeded model."""
    if path:
        scripted = scripted_price(path, at)
        if scripted is not None:
            return scripted
    return model_price(seed, symbol, at)


def underlying_quote(price: Decimal) -> tuple[Decimal, Decimal]:
    """(bid, ask) of the underlying: one cent either side of the last price."""
    return price - TICK, price + TICK


def daily_history(
    seed: int, symbol: str, until: datetime, sessions: int = 250
) -> list[tuple[date, Decimal]]:
    """The last ``sessions`` completed daily closes at ``until``, oldest first."""
    days: list[tuple[date, Decimal]] = []
    day = clock.last_completed_session(until)
    while len(days) < sessions:
        days.append((day, model_close(seed, symbol, day)))
        day = clock.previous_session_before(day)
    days.reverse()
    return days


def atm_iv(seed: int, symbol: str, day: date) -> float:
    """At-the-money implied volatility on ``day``: a slow seeded cycle around the base."""
    spec = UNDERLYINGS[symbol]
    ordinal = day.toordinal()
    phase = _unit_normal(seed, symbol, "iv-phase") * math.pi
    slow = math.sin(2 * math.pi * ordinal / 180.0 + phase)
    fast = math.sin(2 * math.pi * ordinal / 23.0 + 2 * phase)
    return spec.base_iv * (1.0 + 0.25 * slow + 0.08 * fast)


def implied_vol(atm: float, spot: float, strike: float, years: float) -> float:
    """IV surface: skewed so that lower strikes (puts) carry higher volatility."""
    horizon = max(years, 1.0 / YEAR_DAYS)
    moneyness = math.log(strike / spot) / (atm * math.sqrt(horizon))
    smile = 1.0 - 0.10 * moneyness + 0.015 * moneyness * moneyness
    return min(max(atm * smile, 0.05), 2.5)


def expiry_instant(expiration: date) -> datetime:
    """When an option expiring on ``expiration`` stops trading (the session close)."""
    bounds = clock.session_bounds(expiration)
    if bounds is not None:
        return bounds[1]
    return datetime.combine(expiration, time(16), tzinfo=clock.NEW_YORK).astimezone(UTC)


def years_to_expiry(expiration: date, at: datetime) -> float:
    """Time to expiry in years (0 once expired)."""
    seconds = (expiry_instant(expiration) - at).total_seconds()
    return max(seconds, 0.0) / (YEAR_DAYS * 86400.0)


@dataclass(frozen=True)
class OptionQuote:
    """Theoretical value, quote and volatility of one option at one instant."""

    theo: Decimal
    bid: Decimal
    ask: Decimal
    iv: float

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2, not rounded: the fill model rounds where it must."""
        return (self.bid + self.ask) / 2


def option_quote(
    *,
    spot: Decimal,
    strike: Decimal,
    is_call: bool,
    expiration: date,
    at: datetime,
    atm: float,
    rate: float,
) -> OptionQuote:
    """Black-Scholes (vollib) value on the skewed surface, with a quote that widens away
    from the money."""
    years = years_to_expiry(expiration, at)
    s, k = float(spot), float(strike)
    intrinsic = max(s - k, 0.0) if is_call else max(k - s, 0.0)
    if years <= 0:
        theo = intrinsic
        iv = atm
    else:
        iv = implied_vol(atm, s, k, years)
        theo = max(float(black_scholes("c" if is_call else "p", s, k, years, rate, iv)), intrinsic)
    distance = abs(math.log(k / s)) / (atm * math.sqrt(max(years, 1.0 / YEAR_DAYS)))
    width = 0.02 + 0.04 * distance + 0.004 * theo
    value = Decimal(str(round(theo, 6)))
    bid = round_tick(theo - width / 2, ROUND_FLOOR)
    ask = round_tick(theo + width / 2, ROUND_CEILING)
    bid = max(bid, Decimal(0))
    ask = max(ask, bid + TICK)
    return OptionQuote(theo=value, bid=bid, ask=ask, iv=iv)


def historical_vol(closes: list[Decimal], window: int = 30) -> float:
    """Annualised close-to-close volatility of the last ``window`` returns."""
    tail = [float(c) for c in closes[-(window + 1) :]]
    returns = [math.log(b / a) for a, b in itertools.pairwise(tail)]
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(var * 252.0)


def iv_rank_and_percentile(seed: int, symbol: str, day: date) -> tuple[float, float]:
    """IV rank and percentile (0..1) of today's ATM IV over the past year."""
    today = atm_iv(seed, symbol, day)
    past = [atm_iv(seed, symbol, day - timedelta(days=n)) for n in range(1, 366)]
    low, high = min([*past, today]), max([*past, today])
    rank = 0.0 if high == low else (today - low) / (high - low)
    percentile = sum(1 for v in past if v < today) / len(past)
    return rank, percentile
