"""Deterministic identifiers: a restart re-derives the same ids, hence the same client tags.

Every id is a UUIDv5 of the decision it stands for, so the reaction to one
``RiskReserved`` (or one fill) always names the same order and position, however often
it runs. The opening order's id (`libs.domain.orders.opening_order_id`) is shared with
risk, whose dry run checks the very request execution places; the client tag sent to the
broker is derived from the order id (`libs.domain.orders.client_tag_for`).
"""

from __future__ import annotations

from uuid import UUID, uuid5

from libs.contracts.strategy import SpreadKind
from libs.domain.orders import ORDER_NAMESPACE as NAMESPACE


def position_id_for(opening_order_id: UUID) -> UUID:
    """The position an opening order opens (also the id of its attention flag)."""
    return uuid5(NAMESPACE, f"position:{opening_order_id}")


def profit_target_order_id(position_id: UUID, kind: SpreadKind) -> UUID:
    """The profit-target exit of one spread of a position."""
    return uuid5(NAMESPACE, f"profit-target:{position_id}:{kind.value}")
