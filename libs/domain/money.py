"""Money rules of an option order (DOMAIN.md 4-5): the tick, the multiplier, rounding.

Prices are signed as the broker takes them (+ credit received, - debit paid). Rounding
"in the direction that makes the order more marketable" asks for less credit or offers
more debit: on the signed value that is always towards minus infinity (credits down,
debits up).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

#: The option tick for QQQ and SPY.
TICK = Decimal("0.01")
#: Shares per option contract: per-share prices times this are dollars per contract.
MULTIPLIER = Decimal(100)


def marketable(price: Decimal, tick: Decimal = TICK) -> Decimal:
    """``price`` on the tick, rounded the marketable way (credits down, debits up)."""
    if not price.is_finite():
        raise ValueError(f"a limit price must be finite, got {price}")
    return price.quantize(tick, rounding=ROUND_FLOOR)


def is_on_tick(price: Decimal, tick: Decimal = TICK) -> bool:
    """Whether ``price`` is finite and a whole number of ticks."""
    return price.is_finite() and price == price.quantize(tick)


def debit_limit(closing_debit: Decimal, tick: Decimal = TICK) -> Decimal:
    """The signed limit price paying ``closing_debit`` (per share), rounded up to the tick.

    Never less than one tick of debit: a zero (or positive) price would not be a closing
    debit at all, and the broker refuses a zero-priced limit order.
    """
    if not closing_debit.is_finite():
        raise ValueError(f"a closing debit must be finite, got {closing_debit}")
    return min(marketable(-closing_debit, tick), -tick)


def dollars(per_share: Decimal, quantity: int = 1) -> Decimal:
    """A per-share amount of ``quantity`` contracts in dollars."""
    return per_share * MULTIPLIER * quantity


def money(value: Decimal) -> str:
    """``value`` for a sentence: at least two decimals (2.1 -> "2.10"), never fewer digits."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(TICK)
    return f"{value:f}"


def percent(ratio: Decimal) -> str:
    """0.70 -> "70"."""
    return f"{(ratio * 100).normalize():f}"
