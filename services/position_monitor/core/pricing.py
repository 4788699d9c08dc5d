"""Money helpers shared by the rules: the tick, the multiplier, closing legs, formatting.

Prices are signed as the broker takes them (+ credit received, - debit paid). Closing
a credit spread is a debit; rounding it to the tick "more marketable" offers more
debit, which on the signed value is towards minus infinity (DOMAIN.md 5).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from libs.contracts.execution import OrderAction, OrderLeg
from libs.contracts.positions import PositionSpread

#: The option tick for QQQ and SPY.
TICK = Decimal("0.01")
#: Shares per option contract.
MULTIPLIER = Decimal(100)


def debit_limit(closing_debit: Decimal, tick: Decimal = TICK) -> Decimal:
    """The signed limit price paying ``closing_debit`` (per share), rounded up to the tick.

    Never less than one tick of debit: a zero (or positive) price would not be a closing
    debit at all, and the broker refuses a zero-priced limit order.
    """
    if not closing_debit.is_finite():
        raise ValueError(f"a closing debit must be finite, got {closing_debit}")
    price = (-closing_debit).quantize(tick, rounding=ROUND_FLOOR)
    return min(price, -tick)


def closing_legs(spread: PositionSpread) -> tuple[OrderLeg, OrderLeg]:
    """Buy back the short leg, sell the long leg: a closing order can never open legs.

    Each leg carries the spread's quantity, so the order's ratio unit is one spread and
    its price is per spread (per share), like the profit targets execution places.
    """
    return (
        OrderLeg(
            symbol=spread.short_symbol, action=OrderAction.BUY_TO_CLOSE, quantity=spread.quantity
        ),
        OrderLeg(
            symbol=spread.long_symbol, action=OrderAction.SELL_TO_CLOSE, quantity=spread.quantity
        ),
    )


def money(value: Decimal) -> str:
    """``value`` for a sentence: at least two decimals (2.1 -> "2.10"), never fewer digits."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return f"{value:f}"


def percent(ratio: Decimal) -> str:
    """0.70 -> "70"."""
    return f"{(ratio * 100).normalize():f}"
