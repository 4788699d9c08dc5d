"""The opening order of an approved suggestion, as the broker's dry run is asked about it (pure).

A Trident opens as one multi-leg order (DOMAIN.md 1, 5): the two put spreads share their
strikes, so sell 2 short puts and buy 2 long puts, plus (unless near a band) sell 1 short
call and buy 1 long call: 2:2:1:1, or 2:2 without the call spread. The limit price is the
approval's ``limit_credit`` as is: it is already per unit of the leg ratio (TastyTrade
units), positive because it is a credit. Openings are DAY limit orders.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from libs.broker.client_tags import client_tag_for
from libs.broker.models import OrderRequest
from libs.contracts.execution import TimeInForce, opening_legs
from libs.contracts.strategy import Suggestion


def opening_order(suggestion: Suggestion, limit_credit: Decimal, decision_id: UUID) -> OrderRequest:
    """The DAY limit order opening ``suggestion`` at ``limit_credit`` (order-price units).

    ``decision_id`` names the request for the broker (its client tag); for a dry run
    nothing is placed, so the reservation id serves.
    """
    if not limit_credit.is_finite() or limit_credit <= 0:
        raise ValueError(f"an opening order's limit is a positive credit, got {limit_credit}")
    return OrderRequest(
        underlying=suggestion.underlying,
        legs=opening_legs(suggestion),
        limit_price=limit_credit,
        time_in_force=TimeInForce.DAY,
        client_tag=client_tag_for(decision_id),
    )
