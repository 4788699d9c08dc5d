"""The fill model and the margin of option positions: pure functions, no state.

Prices follow the TastyTrade convention of DOMAIN.md section 5: signed (credit > 0,
debit < 0) and per unit of the order's leg ratio (leg quantities divided by their GCD).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

TICK = Decimal("0.01")
MULTIPLIER = 100


@dataclass(frozen=True)
class LegQuote:
    """One order leg with the current quote of its option."""

    sells: bool
    quantity: int
    bid: Decimal
    ask: Decimal

    @property
    def sign(self) -> int:
        """+1 when the leg brings cash in (a sale), -1 when it pays out."""
        return 1 if self.sells else -1

    @property
    def mid(self) -> Decimal:
        """Unrounded quote mid."""
        return (self.bid + self.ask) / 2


class Decision(enum.Enum):
    """What the fill model does with a limit order now."""

    FILL_NOW = "fill-now"
    FILL_AFTER_DELAY = "fill-after-delay"
    REST = "rest"


def ratio_gcd(quantities: Sequence[int]) -> int:
    """The greatest common divisor of the leg quantities (the number of ratio units)."""
    return math.gcd(*quantities) if quantities else 1


def unit_quantities(legs: Sequence[LegQuote]) -> list[int]:
    """Leg quantities of one ratio unit (2:2:1:1 stays, 2:2 becomes 1:1)."""
    divisor = ratio_gcd([leg.quantity for leg in legs])
    return [leg.quantity // divisor for leg in legs]


def natural_price(legs: Sequence[LegQuote]) -> Decimal:
    """Signed price per unit at the natural: sell at the bid, buy at the ask."""
    units = unit_quantities(legs)
    return sum(
        (
            leg.sign * unit * (leg.bid if leg.sells else leg.ask)
            for leg, unit in zip(legs, units, strict=True)
        ),
        Decimal(0),
    )


def mid_price(legs: Sequence[LegQuote]) -> Decimal:
    """Signed price per unit at the mid (unrounded)."""
    units = unit_quantities(legs)
    return sum(
        (leg.sign * unit * leg.mid for leg, unit in zip(legs, units, strict=True)), Decimal(0)
    )


def decide(limit: Decimal, legs: Sequence[LegQuote], *, market_open: bool) -> Decision:
    """At or beyond the natural fills now; at or better than the mid fills after a delay;
    a worse price, or a closed market, rests.

    A signed limit is "at or beyond" a reference when it asks no more credit (or offers
    at least as much debit) as the reference, i.e. ``limit <= reference``.
    """
    if not market_open:
        return Decision.REST
    if limit <= natural_price(legs):
        return Decision.FILL_NOW
    if limit <= mid_price(legs):
        return Decision.FILL_AFTER_DELAY
    return Decision.REST


def execution_price(limit: Decimal, legs: Sequence[LegQuote]) -> Decimal:
    """The per-unit price an order fills at: the natural when the limit is beyond it (the
    customer gets the better price), else its own limit."""
    natural = natural_price(legs)
    return natural if limit <= natural else limit


def leg_prices(price: Decimal, legs: Sequence[LegQuote]) -> list[Decimal]:
    """Per-leg fill prices (unsigned, on the tick) whose signed ratio sum is ``price``.

    Legs start at their natural (when the price is the natural) or their rounded mid, and
    the cents left over go to a one-unit leg, the dearest one so it stays positive. With no
    one-unit leg (e.g. a 2:3 ratio) the remainder is split as closely as the tick allows.
    """
    units = unit_quantities(legs)
    if price == natural_price(legs):
        return [leg.bid if leg.sells else leg.ask for leg in legs]
    prices = [leg.mid.quantize(TICK, rounding=ROUND_HALF_EVEN) for leg in legs]
    total = sum(
        (leg.sign * unit * p for leg, unit, p in zip(legs, units, prices, strict=True)),
        Decimal(0),
    )
    residual = price - total
    if residual == 0:
        return prices
    candidates = [i for i, unit in enumerate(units) if unit == 1] or list(range(len(legs)))
    index = max(candidates, key=lambda i: prices[i])
    step = (residual / units[index]).quantize(TICK, rounding=ROUND_HALF_EVEN)
    prices[index] = max(prices[index] + legs[index].sign * step, Decimal(0))
    return prices


@dataclass(frozen=True)
class OptionHolding:
    """A signed option quantity (contracts) for margin purposes."""

    is_call: bool
    strike: Decimal
    quantity: int


def expiry_payoff(holdings: Sequence[OptionHolding], spot: Decimal) -> Decimal:
    """Value at expiry of the holdings if the underlying settles at ``spot`` (dollars)."""
    total = Decimal(0)
    for h in holdings:
        intrinsic = (
            max(spot - h.strike, Decimal(0)) if h.is_call else max(h.strike - spot, Decimal(0))
        )
        total += intrinsic * h.quantity * MULTIPLIER
    return total


def margin_requirement(holdings: Sequence[OptionHolding]) -> Decimal:
    """Worst loss at expiry of one expiration's holdings, ignoring premiums.

    For defined-risk spreads this is the width times the contracts (a 3-wide trident
    needs 2 x 3 x 100 because only one side can lose). Undefined risk is capped by
    checking up to three times the highest strike.
    """
    if not holdings:
        return Decimal(0)
    strikes = sorted({h.strike for h in holdings})
    checks = [Decimal(0), *strikes, strikes[-1] * 3]
    worst = min(expiry_payoff(holdings, s) for s in checks)
    return max(-worst, Decimal(0))
