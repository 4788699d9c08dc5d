"""A trident's dollar figures at a credit, and order prices back to total credit (DOMAIN.md 4-5).

Total credit is per share: 2 x put spread credit + call spread credit (0 without one).
An order's limit price is per unit of its leg ratio (TastyTrade): the 2:2:1:1 trident is
one unit, so its price is the total credit; the 2:2 trident (no call spread) is two units
of one put spread, so its price is one put spread's credit and the total is twice that.
The risk re-check on approval must use the credit of the order actually sent, hence
`total_credit_from_order_price`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

#: Shares per option contract.
MULTIPLIER = Decimal(100)


@dataclass(frozen=True, slots=True)
class TridentRisk:
    """Dollar figures of one trident at a total credit (per share)."""

    total_credit: Decimal
    max_profit: Decimal
    """Total credit x 100."""
    max_risk: Decimal
    """2 x W x 100 - total credit x 100: only one side can lose (equal short strikes)."""
    required_capital: Decimal
    """2 x W x 100."""


def trident_risk(width: Decimal, total_credit: Decimal) -> TridentRisk:
    """The figures of a trident of spread width ``width`` collecting ``total_credit``.

    Exact, no rounding. A credit above 2 x W would give a negative max risk, which the
    budget check refuses as an input error.
    """
    if not width.is_finite() or width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if not total_credit.is_finite():
        raise ValueError(f"total_credit must be finite, got {total_credit}")
    required = 2 * width * MULTIPLIER
    return TridentRisk(
        total_credit=total_credit,
        max_profit=total_credit * MULTIPLIER,
        max_risk=required - total_credit * MULTIPLIER,
        required_capital=required,
    )


def order_unit(*, includes_call_spread: bool) -> int:
    """Price units in one trident: the GCD of its leg quantities (1 for 2:2:1:1, 2 for 2:2)."""
    return 1 if includes_call_spread else 2


def total_credit_from_order_price(order_price: Decimal, *, includes_call_spread: bool) -> Decimal:
    """The total credit (per share) of an opening order priced ``order_price`` (TastyTrade units).

    ``order_price`` is the signed limit price of a credit order, so it must be positive.
    """
    if not order_price.is_finite() or order_price <= 0:
        raise ValueError(f"an opening order's price is a positive credit, got {order_price}")
    return order_price * order_unit(includes_call_spread=includes_call_spread)


def trident_risk_at_order_price(
    width: Decimal, order_price: Decimal, *, includes_call_spread: bool
) -> TridentRisk:
    """The figures at the credit of the order actually sent (the approval's limit price)."""
    credit = total_credit_from_order_price(order_price, includes_call_spread=includes_call_spread)
    return trident_risk(width, credit)
