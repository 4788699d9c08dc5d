"""Leg prices, spread credits and position Greeks (DOMAIN.md 3-4); risk figures are
`libs.domain.trident`'s.

Money is exact: a mid is (bid + ask) / 2 without rounding (at most half a cent finer
than the quotes), credits and risk are sums and products of those, so no rounding is
applied. Greeks come from vollib's Black-Scholes (analytical), with each option's IV
implied from its mid; they are rounded to 4 decimals, ROUND_HALF_EVEN.

Greek units (position = sum over legs of sign x quantity x greek x 100, sign +1 bought,
-1 sold): delta in shares of the underlying per $1 move; gamma in delta per $1 move;
theta in dollars per calendar day (vollib divides by 365); vega in dollars per 1 point
of implied volatility (vollib multiplies by 0.01).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from vollib.black_scholes.greeks.analytical import delta, gamma, theta, vega
from vollib.black_scholes.implied_volatility import implied_volatility

from libs.contracts.execution import OrderAction
from libs.contracts.market import Greeks
from libs.contracts.symbols import OccSymbol, OptionType
from libs.domain.money import MULTIPLIER

DAYS_PER_YEAR = 365
_GREEK_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class PricedLeg:
    """One option of the order with its live quote."""

    symbol: OccSymbol
    action: OrderAction
    quantity: int
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2, exact."""
        return (self.bid + self.ask) / 2

    @property
    def sign(self) -> int:
        """+1 for a bought leg, -1 for a sold one."""
        return 1 if self.action.is_buy else -1


@dataclass(frozen=True, slots=True)
class Credit:
    """A credit per share at the natural and the mid price."""

    natural: Decimal
    mid: Decimal

    @classmethod
    def zero(cls) -> Credit:
        """No credit (an omitted spread)."""
        return cls(Decimal(0), Decimal(0))

    @classmethod
    def of_spread(cls, short: PricedLeg, long: PricedLeg) -> Credit:
        """Natural = short bid - long ask; mid = short mid - long mid."""
        return cls(short.bid - long.ask, short.mid - long.mid)


def total_credit(put_spread: Credit, call_spread: Credit) -> Credit:
    """2 x put spread credit + call spread credit (zero when omitted)."""
    return Credit(
        2 * put_spread.natural + call_spread.natural,
        2 * put_spread.mid + call_spread.mid,
    )


def _leg_greeks(
    leg: PricedLeg, underlying_price: float, years: float, rate: float
) -> tuple[float, float, float, float] | None:
    flag = "c" if leg.symbol.option_type is OptionType.CALL else "p"
    strike = float(leg.symbol.strike)
    try:
        sigma = float(
            implied_volatility(float(leg.mid), underlying_price, strike, years, rate, flag)
        )
        values = (
            float(delta(flag, underlying_price, strike, years, rate, sigma)),
            float(gamma(flag, underlying_price, strike, years, rate, sigma)),
            float(theta(flag, underlying_price, strike, years, rate, sigma)),
            float(vega(flag, underlying_price, strike, years, rate, sigma)),
        )
    except Exception:  # vollib raises its own types (below intrinsic, above maximum)
        return None
    if not math.isfinite(sigma) or sigma <= 0 or not all(math.isfinite(v) for v in values):
        return None
    return values


def position_greeks(
    legs: Sequence[PricedLeg], underlying_price: Decimal, dte: int, rate: Decimal
) -> Greeks | None:
    """Summed position Greeks, or None when any leg's IV cannot be implied."""
    if dte <= 0:
        return None
    years = dte / DAYS_PER_YEAR
    totals = [Decimal(0)] * 4
    for leg in legs:
        values = _leg_greeks(leg, float(underlying_price), years, float(rate))
        if values is None:
            return None
        scale = leg.sign * leg.quantity * MULTIPLIER
        totals = [t + Decimal(repr(v)) * scale for t, v in zip(totals, values, strict=True)]
    d, g, th, v = (t.quantize(_GREEK_PLACES, rounding=ROUND_HALF_EVEN) for t in totals)
    return Greeks(delta=d, gamma=g, theta=th, vega=v)
