"""The orders execution builds: openings, exits and re-priced replacements (pure).

There is no order type to choose: every `OrderSpec` becomes a LIMIT order (the adapter
only knows ``LimitOrder``), and `check_limit_order` refuses anything that is not a valid
limit order for its purpose before it can be recorded or sent.

Openings (DOMAIN.md 5): DAY, legs 2:2:1:1 (or 2:2 without the call spread), price per
unit of the leg ratio, a positive credit rounded down to the tick. Exits (DOMAIN.md 6):
GTC, BUY_TO_CLOSE / SELL_TO_CLOSE legs only, a negative price (a debit) on the tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from libs.contracts.execution import (
    OrderLeg,
    OrderPurpose,
    TimeInForce,
    check_order_shape,
)
from libs.contracts.strategy import SpreadKind, Suggestion
from libs.domain.money import TICK, is_on_tick, marketable
from libs.domain.orders import OrderRequest, client_tag_for, opening_order_id
from libs.domain.trident import opening_order_request


class InvalidOrder(ValueError):
    """The order cannot be built or sent as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One limit order decision: everything ``OrderSubmitted`` records and the broker needs."""

    order_id: UUID
    purpose: OrderPurpose
    underlying: str
    legs: tuple[OrderLeg, ...]
    limit_price: Decimal
    """Signed: + credit, - debit; per unit of the leg ratio, on the tick."""
    time_in_force: TimeInForce
    suggestion_id: UUID | None = None
    reservation_id: UUID | None = None
    position_id: UUID | None = None
    spread_kind: SpreadKind | None = None
    replaces_order_id: UUID | None = None

    @property
    def client_tag(self) -> str:
        """The broker's external identifier: derived from the order id (deterministic)."""
        return client_tag_for(self.order_id)

    def request(self) -> OrderRequest:
        """What the adapter sends (always a limit order)."""
        return OrderRequest(
            underlying=self.underlying,
            legs=self.legs,
            limit_price=self.limit_price,
            time_in_force=self.time_in_force,
            client_tag=self.client_tag,
        )

    def submitted_fields(self) -> dict[str, Any]:
        """The payload fields of the ``OrderSubmitted`` recording this decision."""
        return {
            "order_id": self.order_id,
            "client_tag": self.client_tag,
            "purpose": self.purpose,
            "underlying": self.underlying,
            "legs": self.legs,
            "limit_price": self.limit_price,
            "time_in_force": self.time_in_force,
            "suggestion_id": self.suggestion_id,
            "reservation_id": self.reservation_id,
            "position_id": self.position_id,
            "spread_kind": self.spread_kind,
            "replaces_order_id": self.replaces_order_id,
        }


def check_limit_order(spec: OrderSpec) -> OrderSpec:
    """``spec`` if it is a valid limit order for its purpose; raises `InvalidOrder`.

    Shape per purpose (contracts' `check_order_shape`), a non-zero price on the tick,
    positive (credit) for openings and negative (debit) for exits.
    """
    try:
        check_order_shape(spec.purpose, spec.legs, spec.time_in_force)
    except ValueError as exc:
        raise InvalidOrder(str(exc)) from None
    price = spec.limit_price
    if not is_on_tick(price):
        raise InvalidOrder(f"limit price {price} is not on the {TICK} tick")
    if spec.purpose is OrderPurpose.OPEN and price <= 0:
        raise InvalidOrder(f"an opening order's limit is a positive credit, got {price}")
    if spec.purpose.is_exit and price >= 0:
        raise InvalidOrder(f"closing a credit spread is a debit (negative price), got {price}")
    return spec


def opening_order(
    suggestion: Suggestion, limit_credit: Decimal, *, reservation_id: UUID
) -> OrderSpec:
    """The opening order of ``suggestion`` reserved under ``reservation_id``.

    Built from `opening_order_request`, the very request risk's dry run checked: its
    legs, tick-rounded price, time in force and client tag (from `opening_order_id`).
    """
    try:
        request = opening_order_request(suggestion, limit_credit, reservation_id=reservation_id)
    except ValueError as exc:
        raise InvalidOrder(str(exc)) from None
    return check_limit_order(
        OrderSpec(
            order_id=opening_order_id(reservation_id),
            purpose=OrderPurpose.OPEN,
            underlying=request.underlying,
            legs=request.legs,
            limit_price=request.limit_price,
            time_in_force=request.time_in_force,
            suggestion_id=suggestion.suggestion_id,
            reservation_id=reservation_id,
        )
    )


def exit_order(
    *,
    order_id: UUID,
    underlying: str,
    position_id: UUID,
    spread_kind: SpreadKind,
    purpose: OrderPurpose,
    legs: Sequence[OrderLeg],
    limit_price: Decimal,
) -> OrderSpec:
    """A GTC closing limit order for one spread; the debit is rounded up to the tick."""
    if not purpose.is_exit:
        raise InvalidOrder("an exit order's purpose is not OPEN")
    return check_limit_order(
        OrderSpec(
            order_id=order_id,
            purpose=purpose,
            underlying=underlying,
            legs=tuple(legs),
            limit_price=marketable(limit_price),
            time_in_force=TimeInForce.GTC,
            position_id=position_id,
            spread_kind=spread_kind,
        )
    )


def replacement_order(
    *,
    original: OrderSpec,
    order_id: UUID,
    limit_price: Decimal,
    remaining: Sequence[OrderLeg] | None = None,
) -> OrderSpec:
    """``original`` re-priced as a new decision ``order_id`` (closing orders only).

    ``remaining`` gives the legs still unfilled (a partly filled exit is re-priced for
    its rest, as the broker does); by default the original legs.
    """
    if not original.purpose.is_exit:
        raise InvalidOrder("only closing orders are re-priced")
    return check_limit_order(
        OrderSpec(
            order_id=order_id,
            purpose=original.purpose,
            underlying=original.underlying,
            legs=tuple(remaining) if remaining is not None else original.legs,
            limit_price=marketable(limit_price),
            time_in_force=original.time_in_force,
            position_id=original.position_id,
            spread_kind=original.spread_kind,
            replaces_order_id=original.order_id,
        )
    )
