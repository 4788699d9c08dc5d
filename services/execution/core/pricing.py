"""Tick rounding of limit prices (DOMAIN.md 5).

Prices are signed (+ credit received, - debit paid). Rounding "in the direction that
makes the order more marketable" asks for less credit or offers more debit: on the
signed value that is always towards minus infinity (credits down, debits up).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

#: The option tick for QQQ and SPY.
TICK = Decimal("0.01")


def marketable(price: Decimal, tick: Decimal = TICK) -> Decimal:
    """``price`` on the tick, rounded the marketable way (credits down, debits up)."""
    if not price.is_finite():
        raise ValueError(f"a limit price must be finite, got {price}")
    return price.quantize(tick, rounding=ROUND_FLOOR)
