"""Notifications: which event asks for which notice, and what the reactions do with it."""

from __future__ import annotations

from decimal import Decimal
from typing import cast
from uuid import UUID

import pytest
import structlog

from libs.contracts.account import AccountSettings, AccountSettingsChanged
from libs.contracts.envelope import Event
from libs.contracts.errors import ErrorKind
from libs.contracts.positions import (
    AttentionReason,
    CloseReason,
    PositionNeedsAttention,
    PositionUpdated,
    SpreadClosed,
)
from libs.contracts.risk import RiskTemplate
from libs.contracts.system import (
    NotificationChannel,
    NotificationRequested,
    NotificationTopic,
    TradingSuspended,
)
from services.position_monitor.core import notification_id
from services.position_monitor.notifications import NOTICES, Notifications, notice_of
from services.position_monitor.notifier import EmailNotifier, NotifierStopped
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import ACCOUNT, POSITION
from tests.unit.position_monitor.fakes import PS1, FakeShell, env, fold, opened

ORDER = UUID(int=5)


def attention(reason: AttentionReason = AttentionReason.GONE_AT_BROKER) -> PositionNeedsAttention:
    return PositionNeedsAttention(
        **env(),
        position_id=POSITION,
        underlying="SPY",
        reason=reason,
        message="gone at the broker",
        app_managed=False,
        active=False,
    )


def spread_closed(order_id: UUID | None = ORDER) -> SpreadClosed:
    return SpreadClosed(
        **env(),
        position_id=POSITION,
        spread_kind=PS1,
        reason=CloseReason.PROFIT_TARGET,
        closing_order_id=order_id,
        exit_debit=Decimal("0.60") if order_id is not None else None,
        realized_pnl=Decimal(45),
    )


def suspended() -> TradingSuspended:
    return TradingSuspended(**env(), reason=ErrorKind.AUTH_FAILED, message="credentials refused")


def email_only(*topics: NotificationTopic) -> AccountSettingsChanged:
    return AccountSettingsChanged(
        **env(),
        user_id="alice",
        settings=AccountSettings(risk_template=RiskTemplate.CONSERVATIVE, email_topics=topics),
    )


def test_the_notifying_events() -> None:
    assert set(NOTICES) == {PositionNeedsAttention, SpreadClosed, TradingSuspended}


@pytest.mark.parametrize(
    ("event", "topic"),
    [
        (attention(), NotificationTopic.POSITION_CLOSED_EXTERNALLY),
        (attention(AttentionReason.BROKER_MISMATCH), NotificationTopic.NEEDS_ATTENTION),
        (spread_closed(), NotificationTopic.PROFIT_TARGET),
        (suspended(), NotificationTopic.TRADING_SUSPENDED),
    ],
)
def test_each_event_routes_to_its_topic_with_an_id_from_its_cause(
    event: Event, topic: NotificationTopic
) -> None:
    found = notice_of(fold(opened()), ACCOUNT, event)
    assert found is not None
    assert found.topic is topic
    assert found.notification_id == notification_id(event.event_id, topic)


def test_a_spread_closed_names_the_positions_underlying() -> None:
    found = notice_of(fold(opened()), ACCOUNT, spread_closed())
    assert found is not None
    assert found.title.startswith("SPY: ")
    unknown = notice_of(MonitorState(), ACCOUNT, spread_closed())
    assert unknown is not None
    assert unknown.title.startswith("position: ")


def test_a_spread_closed_without_an_exit_order_and_other_events_notify_nothing() -> None:
    state = fold(opened())
    assert notice_of(state, ACCOUNT, spread_closed(order_id=None)) is None
    assert notice_of(state, ACCOUNT, opened()) is None


def test_e_mail_follows_the_accounts_topics() -> None:
    state = fold(opened(), email_only(NotificationTopic.STOP_LOSS))
    found = notice_of(state, ACCOUNT, attention())
    assert found is not None
    assert NotificationChannel.EMAIL not in found.channels
    assert NotificationChannel.BANNER in found.channels


class Notifier:
    """Records what is submitted; ``stopped``: refuses like a stopped notifier."""

    def __init__(self) -> None:
        self.submitted: list[NotificationRequested] = []
        self.stopped = False

    def submit(self, event: NotificationRequested) -> bool:
        if self.stopped:
            raise NotifierStopped("stopped")
        self.submitted.append(event)
        return True


def notifications(state: MonitorState) -> tuple[Notifications, FakeShell, Notifier]:
    shell = FakeShell(state)
    notifier = Notifier()
    fake = cast(EmailNotifier, notifier)
    return Notifications(shell, state, fake, structlog.get_logger()), shell, notifier


async def test_a_cause_asks_for_its_notification_once() -> None:
    state = fold(opened())
    reactions, shell, _ = notifications(state)
    cause = attention()
    await reactions.react(cause)
    (asked,) = shell.fake_bus.published
    assert isinstance(asked, NotificationRequested)
    assert asked.topic is NotificationTopic.POSITION_CLOSED_EXTERNALLY
    assert asked.event_id == asked.notification_id
    assert (asked.causation_id, asked.correlation_id) == (cause.event_id, cause.correlation_id)
    state.apply(asked)  # folded: a redelivered cause asks no more
    await reactions.react(cause)
    assert len(shell.fake_bus.published) == 1
    assert shell.published == []  # no wait for the fold: nothing reads it back


async def test_a_requested_notification_goes_to_the_notifier() -> None:
    state = fold(opened())
    reactions, shell, notifier = notifications(state)
    await reactions.react(suspended())
    (asked,) = shell.fake_bus.published
    assert isinstance(asked, NotificationRequested)
    await reactions.react(asked)
    assert notifier.submitted == [asked]
    notifier.stopped = True
    await reactions.react(asked)  # logged, not raised: nothing waits on e-mail


async def test_other_events_and_events_without_an_account_pass() -> None:
    state = fold(opened())
    reactions, shell, notifier = notifications(state)
    await reactions.react(
        PositionUpdated.model_construct(**env(), position_id=POSITION)  # not a cause
    )
    await reactions.react(suspended().model_copy(update={"account_id": None}))
    assert shell.fake_bus.published == []
    assert notifier.submitted == []
