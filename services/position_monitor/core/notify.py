"""Which channels a notification goes to, filtered by the user's e-mail topics (DOMAIN.md 7).

DOMAIN.md fixes four event kinds: partial fill -> e-mail, banner, flag; closed
externally -> e-mail, banner; API error -> banner, flag; order failed -> e-mail,
banner, flag. The other topics are ours: a broker mismatch or suspended trading needs
a human like a partial fill (all three); closed spreads and exits are news, not
problems (e-mail and banner). E-mail goes only for topics in the user's
``email_topics``; banner and flag always show.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from libs.contracts.positions import AttentionReason, CloseReason
from libs.contracts.system import NotificationChannel, NotificationTopic, Severity
from libs.domain.money import money
from services.position_monitor.core.exits import SpreadClose
from services.position_monitor.core.ids import notification_id

_E = NotificationChannel.EMAIL
_B = NotificationChannel.BANNER
_F = NotificationChannel.DASHBOARD_FLAG
_TITLE_MAX = 200


@dataclass(frozen=True, slots=True)
class Route:
    """Channels and severity of one topic, before the user's e-mail preference."""

    channels: tuple[NotificationChannel, ...]
    severity: Severity


#: Every topic's route.
ROUTES: Mapping[NotificationTopic, Route] = {
    NotificationTopic.PARTIAL_FILL: Route((_E, _B, _F), Severity.WARNING),
    NotificationTopic.POSITION_CLOSED_EXTERNALLY: Route((_E, _B), Severity.WARNING),
    NotificationTopic.API_ERROR: Route((_B, _F), Severity.ERROR),
    NotificationTopic.ORDER_FAILED: Route((_E, _B, _F), Severity.ERROR),
    NotificationTopic.NEEDS_ATTENTION: Route((_E, _B, _F), Severity.WARNING),
    NotificationTopic.TRADING_SUSPENDED: Route((_E, _B, _F), Severity.ERROR),
    NotificationTopic.STOP_LOSS: Route((_E, _B), Severity.WARNING),
    NotificationTopic.PROFIT_TARGET: Route((_E, _B), Severity.INFO),
    NotificationTopic.TIME_EXIT: Route((_E, _B), Severity.INFO),
    NotificationTopic.ORDER_FILLED: Route((_E, _B), Severity.INFO),
}

#: The topic of each attention reason.
ATTENTION_TOPICS: Mapping[AttentionReason, NotificationTopic] = {
    AttentionReason.PARTIAL_FILL: NotificationTopic.PARTIAL_FILL,
    AttentionReason.GONE_AT_BROKER: NotificationTopic.POSITION_CLOSED_EXTERNALLY,
    AttentionReason.ORDER_FAILED: NotificationTopic.ORDER_FAILED,
    AttentionReason.BROKER_MISMATCH: NotificationTopic.NEEDS_ATTENTION,
}

#: The topic of a spread closed for each reason (EXPIRED is news too: nothing to do).
CLOSE_TOPICS: Mapping[CloseReason, NotificationTopic] = {
    CloseReason.PROFIT_TARGET: NotificationTopic.PROFIT_TARGET,
    CloseReason.STOP_LOSS: NotificationTopic.STOP_LOSS,
    CloseReason.TIME_EXIT: NotificationTopic.TIME_EXIT,
    CloseReason.MANUAL_EXIT: NotificationTopic.ORDER_FILLED,
    CloseReason.EXPIRED: NotificationTopic.ORDER_FILLED,
    CloseReason.EXTERNAL: NotificationTopic.POSITION_CLOSED_EXTERNALLY,
}


def channels_for(
    topic: NotificationTopic, email_topics: Collection[NotificationTopic]
) -> tuple[NotificationChannel, ...]:
    """The topic's channels, without e-mail unless the user wants e-mails on it."""
    return tuple(
        channel
        for channel in ROUTES[topic].channels
        if channel is not NotificationChannel.EMAIL or topic in email_topics
    )


@dataclass(frozen=True, slots=True)
class Notice:
    """One ``NotificationRequested``, minus the envelope."""

    notification_id: UUID
    topic: NotificationTopic
    channels: tuple[NotificationChannel, ...]
    severity: Severity
    title: str
    message: str
    position_id: UUID | None = None
    order_id: UUID | None = None

    def event_fields(self) -> dict[str, Any]:
        """The payload of ``NotificationRequested``."""
        return {
            "notification_id": self.notification_id,
            "topic": self.topic,
            "channels": self.channels,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "position_id": self.position_id,
            "order_id": self.order_id,
        }


def notice(
    topic: NotificationTopic,
    *,
    cause_id: UUID,
    title: str,
    message: str,
    email_topics: Collection[NotificationTopic],
    position_id: UUID | None = None,
    order_id: UUID | None = None,
) -> Notice | None:
    """The notification of ``topic`` caused by event ``cause_id``; None if no channel is left.

    The id derives from the cause, so a redelivered cause yields the same notification.
    """
    if not title.strip() or not message.strip():
        raise ValueError("a notification needs a title and a message")
    channels = channels_for(topic, email_topics)
    if not channels:
        return None
    if len(title) > _TITLE_MAX:
        title = title[: _TITLE_MAX - 3] + "..."
    return Notice(
        notification_id=notification_id(cause_id, topic),
        topic=topic,
        channels=channels,
        severity=ROUTES[topic].severity,
        title=title,
        message=message,
        position_id=position_id,
        order_id=order_id,
    )


def attention_notice(
    reason: AttentionReason,
    *,
    cause_id: UUID,
    underlying: str,
    message: str,
    email_topics: Collection[NotificationTopic],
    position_id: UUID,
    order_id: UUID | None = None,
) -> Notice | None:
    """The notification of a ``PositionNeedsAttention`` (its event id is the cause)."""
    topic = ATTENTION_TOPICS[reason]
    titles = {
        AttentionReason.PARTIAL_FILL: "opening order only partly filled",
        AttentionReason.GONE_AT_BROKER: "position closed outside the app",
        AttentionReason.ORDER_FAILED: "exit order failed",
        AttentionReason.BROKER_MISMATCH: "position differs from the broker",
    }
    return notice(
        topic,
        cause_id=cause_id,
        title=f"{underlying}: {titles[reason]}",
        message=message,
        email_topics=email_topics,
        position_id=position_id,
        order_id=order_id,
    )


def spread_closed_notice(
    close: SpreadClose,
    *,
    cause_id: UUID,
    underlying: str,
    email_topics: Collection[NotificationTopic],
    position_id: UUID,
) -> Notice | None:
    """The notification of a ``SpreadClosed`` (its event id is the cause)."""
    kind = close.spread_kind.value.replace("_", " ").lower()
    reason = close.reason.value.replace("_", " ").lower()
    return notice(
        CLOSE_TOPICS[close.reason],
        cause_id=cause_id,
        title=f"{underlying}: {kind} closed ({reason})",
        message=(
            f"{underlying} {kind} closed by {reason} at a debit of {money(close.exit_debit)}; "
            f"realised P&L {money(close.realized_pnl)} USD"
        ),
        email_topics=email_topics,
        position_id=position_id,
        order_id=close.closing_order_id,
    )
