"""The limit price of an approved Trident (DOMAIN.md 5), in TastyTrade order units.

A multi-leg order is priced per unit of its leg ratio (the quantities over their GCD).
The 2:2:1:1 trident is one unit, so its price is the total credit (2 x put spread +
call spread); the 2:2 trident without calls has GCD 2, so its price is one put spread's
credit: the total credit / 2. Totals (the suggestion's credits and a user's
``custom_credit``) are therefore divided by the unit. Credits are rounded down to the
$0.01 tick: a lower credit is the more marketable order.
"""

from __future__ import annotations

from decimal import Decimal

from libs.contracts.errors import NoCredit, ValidationFailed
from libs.domain.money import TICK, marketable
from libs.domain.trident import to_order_price


def _positive(price: Decimal, what: str) -> Decimal:
    if price <= 0:
        raise NoCredit(f"the {what} rounds to {price}: an opening order must collect a credit")
    return price


def manual_limit(
    total_mid_credit: Decimal,
    includes_call_spread: bool,
    custom_credit: Decimal | None = None,
    width: Decimal | None = None,
) -> Decimal:
    """Limit of a user's approval: the order's mid, or the user's override.

    ``custom_credit`` is in total-credit units (as the suggestion shows it). With the
    spread ``width`` given, an override above 2 x width is refused (VALIDATION_ERROR):
    no Trident collects more than its required capital, so such a credit could never
    fill and would show a negative max risk. Raises `NoCredit` when the price is not
    above zero after rounding.
    """
    if custom_credit is not None and width is not None and custom_credit > 2 * width:
        raise ValidationFailed(
            f"custom credit {custom_credit} is above 2 x width = {2 * width}, the most a "
            "Trident of this width can collect",
            field="custom_credit",
            details={"custom_credit": str(custom_credit), "max": str(2 * width)},
        )
    total = total_mid_credit if custom_credit is None else custom_credit
    what = "mid credit" if custom_credit is None else f"custom credit {custom_credit}"
    return _positive(
        marketable(to_order_price(total, includes_call_spread=includes_call_spread)), what
    )


def automatic_limit(
    total_mid_credit: Decimal,
    total_natural_credit: Decimal,
    includes_call_spread: bool,
    offset_cents: int,
) -> Decimal:
    """Limit of an automatic approval: mid conceded toward natural by the offset.

    The offset is in cents of the order price; the concession never passes the natural
    price (never below it for a credit). Raises `NoCredit` when nothing positive is left.
    """
    if offset_cents < 0:
        raise ValueError("offset_cents must not be negative")
    mid = to_order_price(total_mid_credit, includes_call_spread=includes_call_spread)
    natural = to_order_price(total_natural_credit, includes_call_spread=includes_call_spread)
    conceded = mid - offset_cents * TICK
    # A crossed market (natural above mid) leaves nothing to concede toward.
    floor = min(natural, mid)
    return _positive(marketable(max(conceded, floor)), "automatic credit")
