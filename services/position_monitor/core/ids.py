"""Deterministic ids of the monitor's decisions (UUIDv5).

The same decision always gets the same id, however often it is re-made (a redelivered
event, a restart replaying the log): execution places an exit once per ``order_id``,
and the notifier sends once per ``notification_id``.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from libs.contracts.execution import OrderPurpose
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import NotificationTopic

#: Namespace of the monitor's derived ids (fixed forever: changing it re-names decisions).
NAMESPACE = UUID("0f3f7a52-6c1e-5b8d-a2e4-3d9c1b7e5a60")


def exit_order_id(
    position_id: UUID, kind: SpreadKind, purpose: OrderPurpose, replaces: UUID | None
) -> UUID:
    """The exit of ``kind`` with ``purpose`` that supersedes ``replaces``.

    Each re-pricing replaces the previous order, so the chain of ids stays unique while
    a re-run of the same decision (same order replaced) names the same order.
    """
    return uuid5(NAMESPACE, f"exit:{position_id}:{kind.value}:{purpose.value}:{replaces}")


def notification_id(cause_id: UUID, topic: NotificationTopic) -> UUID:
    """The notification of ``topic`` caused by the event or decision ``cause_id``."""
    return uuid5(NAMESPACE, f"notify:{cause_id}:{topic.value}")
