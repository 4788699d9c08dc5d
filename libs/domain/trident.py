"""The Trident's arithmetic and its orders (DOMAIN.md 1, 4-6).

Total credit is per share: 2 x put spread credit + call spread credit (0 without one).
Max risk = 2 x W x 100 - total credit x 100: the two put spreads share their strikes and
only one side can lose at expiry. An order's limit price is per unit of its leg ratio
(TastyTrade): the 2:2:1:1 Trident is one unit, so its price is the total credit; the 2:2
Trident (no call spread) is two units of one put spread, so its price is one put
spread's credit and the total is twice that.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from libs.contracts.execution import OrderAction, OrderLeg, TimeInForce
from libs.contracts.strategy import SpreadKind, Suggestion
from libs.contracts.symbols import OccSymbol
from libs.domain.money import MULTIPLIER, marketable
from libs.domain.orders import OrderRequest, client_tag_for, opening_order_id


@dataclass(frozen=True, slots=True)
class TridentRisk:
    """Dollar figures of a Trident at a total credit."""

    total_credit: Decimal
    """Per share, summed over every spread of the position."""
    max_profit: Decimal
    """Total credit x 100."""
    max_risk: Decimal
    """2 x W x 100 x quantity - total credit x 100 (negative when the credit exceeds 2W)."""
    required_capital: Decimal
    """2 x W x 100 x quantity."""


def trident_risk(width: Decimal, total_credit: Decimal, *, quantity: int = 1) -> TridentRisk:
    """The figures of ``quantity`` Tridents of spread width ``width`` collecting
    ``total_credit`` (per share, for all of them).

    Exact, no rounding. A credit above 2 x W gives a negative max risk, which each caller
    refuses in its own terms (an input error for risk and the gateway).
    """
    if not width.is_finite() or width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if not total_credit.is_finite():
        raise ValueError(f"total_credit must be finite, got {total_credit}")
    required = 2 * width * MULTIPLIER * quantity
    max_profit = total_credit * MULTIPLIER
    return TridentRisk(
        total_credit=total_credit,
        max_profit=max_profit,
        max_risk=required - max_profit,
        required_capital=required,
    )


def order_unit(*, includes_call_spread: bool) -> int:
    """Price units in one Trident: the GCD of its leg ratio (1 for 2:2:1:1, 2 for 2:2)."""
    return 1 if includes_call_spread else 2


def to_order_price(total_credit: Decimal, *, includes_call_spread: bool) -> Decimal:
    """A total credit (per share) in order-price units, unrounded."""
    return total_credit / order_unit(includes_call_spread=includes_call_spread)


def total_credit_from_order_price(order_price: Decimal, *, includes_call_spread: bool) -> Decimal:
    """The total credit (per share) of an opening order priced ``order_price``.

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


def opening_legs(suggestion: Suggestion) -> tuple[OrderLeg, ...]:
    """The legs of the order opening ``suggestion``, in ratio quantities (DOMAIN.md 1).

    Both put spreads share their strikes (the Suggestion contract holds every spread to
    one short strike and width), so: sell 2 short puts, buy 2 long puts, then, when the
    call spread is traded, sell 1 short call and buy 1 long call: 2:2:1:1, or 2:2.
    """
    put = suggestion.spreads[0]
    legs = [
        OrderLeg(symbol=put.short_leg.symbol, action=OrderAction.SELL_TO_OPEN, quantity=2),
        OrderLeg(symbol=put.long_leg.symbol, action=OrderAction.BUY_TO_OPEN, quantity=2),
    ]
    call = suggestion.spread(SpreadKind.CALL_SPREAD)
    if call is not None:
        legs += [
            OrderLeg(symbol=call.short_leg.symbol, action=OrderAction.SELL_TO_OPEN, quantity=1),
            OrderLeg(symbol=call.long_leg.symbol, action=OrderAction.BUY_TO_OPEN, quantity=1),
        ]
    return tuple(legs)


def closing_legs(
    short_symbol: OccSymbol, long_symbol: OccSymbol, quantity: int = 1
) -> tuple[OrderLeg, OrderLeg]:
    """Buy back the short leg, sell the long leg: a closing order can never open legs.

    Each leg carries the spread's quantity, so the order's ratio unit is one spread and
    its price is per spread (per share).
    """
    return (
        OrderLeg(symbol=short_symbol, action=OrderAction.BUY_TO_CLOSE, quantity=quantity),
        OrderLeg(symbol=long_symbol, action=OrderAction.SELL_TO_CLOSE, quantity=quantity),
    )


def opening_price(limit_credit: Decimal) -> Decimal:
    """The opening order's limit: the approval's credit (order-price units) on the tick,
    rounded down (asking less credit is the marketable direction); raises ValueError
    unless a positive credit is left."""
    if not limit_credit.is_finite() or limit_credit <= 0:
        raise ValueError(f"an opening order's limit is a positive credit, got {limit_credit}")
    price = marketable(limit_credit)
    if price <= 0:
        raise ValueError(f"limit credit {limit_credit} rounds to {price}: nothing to collect")
    return price


def opening_order_request(
    suggestion: Suggestion, limit_credit: Decimal, *, reservation_id: UUID
) -> OrderRequest:
    """THE order opening ``suggestion`` under ``reservation_id`` at ``limit_credit``.

    Risk's dry run asks the broker about exactly this request and execution places
    exactly this request: a DAY limit order of the opening legs, priced per ratio unit
    on the tick, tagged with the reservation's opening order id. Raises ValueError when
    the credit leaves nothing to collect.
    """
    return OrderRequest(
        underlying=suggestion.underlying,
        legs=opening_legs(suggestion),
        limit_price=opening_price(limit_credit),
        time_in_force=TimeInForce.DAY,
        client_tag=client_tag_for(opening_order_id(reservation_id)),
    )
