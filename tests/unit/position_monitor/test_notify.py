"""Notification routing per DOMAIN.md 7, filtered by the user's e-mail topics."""

from __future__ import annotations

from uuid import UUID

import pytest

from libs.contracts.account import AccountSettings
from libs.contracts.positions import AttentionReason, CloseReason
from libs.contracts.risk import RiskTemplate
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import (
    NotificationChannel,
    NotificationRequested,
    NotificationTopic,
    Severity,
)
from services.position_monitor.core import (
    ROUTES,
    SpreadClose,
    attention_notice,
    channels_for,
    notice,
    spread_closed_notice,
)
from tests.unit.position_monitor.builders import ACCOUNT, NOW, POSITION, D

E, B, F = (
    NotificationChannel.EMAIL,
    NotificationChannel.BANNER,
    NotificationChannel.DASHBOARD_FLAG,
)
ALL = tuple(NotificationTopic)
CAUSE = UUID(int=77)


@pytest.mark.parametrize(
    ("topic", "channels"),
    [
        (NotificationTopic.PARTIAL_FILL, {E, B, F}),
        (NotificationTopic.POSITION_CLOSED_EXTERNALLY, {E, B}),
        (NotificationTopic.API_ERROR, {B, F}),
        (NotificationTopic.ORDER_FAILED, {E, B, F}),
    ],
)
def test_domain_channels(topic: NotificationTopic, channels: set[NotificationChannel]) -> None:
    assert set(channels_for(topic, ALL)) == channels


def test_every_topic_has_a_route_with_a_banner() -> None:
    assert set(ROUTES) == set(NotificationTopic)
    assert all(B in route.channels for route in ROUTES.values())


def test_email_only_for_the_users_topics() -> None:
    assert channels_for(NotificationTopic.PARTIAL_FILL, ()) == (B, F)
    assert channels_for(NotificationTopic.PARTIAL_FILL, (NotificationTopic.ORDER_FAILED,)) == (B, F)
    assert E in channels_for(NotificationTopic.PARTIAL_FILL, (NotificationTopic.PARTIAL_FILL,))
    default = AccountSettings(risk_template=RiskTemplate.MODERATE).email_topics
    assert E in channels_for(NotificationTopic.POSITION_CLOSED_EXTERNALLY, default)


def test_notice_maps_to_a_valid_notification_requested() -> None:
    made = notice(
        NotificationTopic.ORDER_FAILED,
        cause_id=CAUSE,
        title="QQQ: exit order failed",
        message="the broker rejected the stop loss: insufficient quantity",
        email_topics=ALL,
        position_id=POSITION,
        order_id=UUID(int=5),
    )
    assert made is not None
    assert made.severity is Severity.ERROR
    event = NotificationRequested(
        occurred_at=NOW,
        producer="position_monitor",
        account_id=ACCOUNT,
        correlation_id=CAUSE,
        causation_id=CAUSE,
        **made.event_fields(),
    )
    assert set(event.channels) == {E, B, F}
    assert event.order_id == UUID(int=5)


def test_notification_ids_follow_the_cause() -> None:
    def make(cause: UUID, topic: NotificationTopic) -> UUID:
        made = notice(topic, cause_id=cause, title="t", message="m", email_topics=ALL)
        assert made is not None
        return made.notification_id

    assert make(CAUSE, NotificationTopic.API_ERROR) == make(CAUSE, NotificationTopic.API_ERROR)
    assert make(CAUSE, NotificationTopic.API_ERROR) != make(
        UUID(int=78), NotificationTopic.API_ERROR
    )
    assert make(CAUSE, NotificationTopic.API_ERROR) != make(CAUSE, NotificationTopic.ORDER_FAILED)


def test_long_titles_are_cut_and_empty_text_refused() -> None:
    made = notice(
        NotificationTopic.API_ERROR, cause_id=CAUSE, title="x" * 500, message="m", email_topics=()
    )
    assert made is not None
    assert len(made.title) == 200
    assert made.title.endswith("...")
    with pytest.raises(ValueError, match="title"):
        notice(NotificationTopic.API_ERROR, cause_id=CAUSE, title=" ", message="m", email_topics=())


@pytest.mark.parametrize(
    ("reason", "topic", "channels"),
    [
        (AttentionReason.PARTIAL_FILL, NotificationTopic.PARTIAL_FILL, {E, B, F}),
        (AttentionReason.GONE_AT_BROKER, NotificationTopic.POSITION_CLOSED_EXTERNALLY, {E, B}),
        (AttentionReason.ORDER_FAILED, NotificationTopic.ORDER_FAILED, {E, B, F}),
        (AttentionReason.BROKER_MISMATCH, NotificationTopic.NEEDS_ATTENTION, {E, B, F}),
    ],
)
def test_attention_notices(
    reason: AttentionReason, topic: NotificationTopic, channels: set[NotificationChannel]
) -> None:
    made = attention_notice(
        reason,
        cause_id=CAUSE,
        underlying="QQQ",
        message="details",
        email_topics=ALL,
        position_id=POSITION,
    )
    assert made is not None
    assert made.topic is topic
    assert set(made.channels) == channels
    assert made.title.startswith("QQQ: ")


def test_spread_closed_notice() -> None:
    close = SpreadClose(
        spread_kind=SpreadKind.PUT_SPREAD_1,
        reason=CloseReason.PROFIT_TARGET,
        closing_order_id=UUID(int=3),
        exit_debit=D("0.63"),
        realized_pnl=D("42"),
    )
    made = spread_closed_notice(
        close, cause_id=CAUSE, underlying="QQQ", email_topics=(), position_id=POSITION
    )
    assert made is not None
    assert made.topic is NotificationTopic.PROFIT_TARGET
    assert made.channels == (B,)
    assert made.title == "QQQ: put spread 1 closed (profit target)"
    assert "realised P&L 42.00 USD" in made.message
