"""Deterministic identifiers: a restart re-derives the same ids, hence the same client tags.

Every id is a UUIDv5 of the decision it stands for, so the reaction to one
``RiskReserved`` (or one fill) always names the same order and position, however often
it runs. The client tag sent to the broker is derived from the order id
(`libs.broker.client_tags.client_tag_for`).
"""

from __future__ import annotations

from uuid import UUID, uuid5

from libs.contracts.strategy import SpreadKind

#: Namespace of execution's derived ids (fixed forever: changing it re-names every order).
NAMESPACE = UUID("5e9e7c1a-3f0b-5c4e-9d1a-6b2f0e4a8c11")


def opening_order_id(reservation_id: UUID) -> UUID:
    """The opening order placed under ``reservation_id`` (one per reservation)."""
    return uuid5(NAMESPACE, f"open:{reservation_id}")


def position_id_for(opening_order_id: UUID) -> UUID:
    """The position an opening order opens (also the id of its attention flag)."""
    return uuid5(NAMESPACE, f"position:{opening_order_id}")


def profit_target_order_id(position_id: UUID, kind: SpreadKind) -> UUID:
    """The profit-target exit of one spread of a position."""
    return uuid5(NAMESPACE, f"profit-target:{position_id}:{kind.value}")
