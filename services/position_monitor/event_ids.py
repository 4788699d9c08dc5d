"""Deterministic event ids of the monitor's facts (UUIDv5).

A fact re-decided after a crash (or by a second loop pass before the stream caught up)
gets the same ``event_id``, which is the bus's ``Nats-Msg-Id``: JetStream drops the copy
inside its duplicate window, and the projections ignore an id they applied.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from libs.contracts.strategy import SpreadKind

#: Namespace of the monitor's event ids (fixed forever).
NAMESPACE = UUID("7a0c2f4e-91d3-5b6a-8e2f-4c1d9b3a6e57")


def spread_closed_id(position_id: UUID, kind: SpreadKind) -> UUID:
    """The one ``SpreadClosed`` of a spread."""
    return uuid5(NAMESPACE, f"spread-closed:{position_id}:{kind.value}")


def position_closed_id(position_id: UUID) -> UUID:
    """The one ``PositionClosed`` of a position."""
    return uuid5(NAMESPACE, f"position-closed:{position_id}")


def exit_placed_id(order_id: UUID) -> UUID:
    """The one ``ExitOrderPlaced`` of an exit order id."""
    return uuid5(NAMESPACE, f"exit-placed:{order_id}")
