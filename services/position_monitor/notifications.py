"""Notifications: live reactions that tell the account's user, and the e-mails they send.

``PositionNeedsAttention``, ``SpreadClosed`` and ``TradingSuspended`` ->
``NotificationRequested`` (the core's routing and the user's e-mail topics; the id
derives from the cause, so a redelivery asks once); ``NotificationRequested`` with the
EMAIL channel -> the `EmailNotifier` (queued: a failed or slow e-mail never blocks
anything). An e-mail goes to the address in the account's settings, else to
``SENEX_SMTP_RECIPIENT`` (an operator's catch-all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from structlog.stdlib import BoundLogger

from libs.contracts.envelope import Event
from libs.contracts.positions import PositionNeedsAttention, SpreadClosed
from libs.contracts.system import NotificationRequested, NotificationTopic, TradingSuspended
from libs.runtime.following import ServiceShell
from libs.runtime.reactions import Reactions
from services.position_monitor.core import (
    Notice,
    SpreadClose,
    attention_notice,
    notice,
    spread_closed_notice,
)
from services.position_monitor.notifier import EmailNotifier, NotifierStopped
from services.position_monitor.state import MonitorState

#: How one event class becomes a notice: ``rule(state, account, event)``.
NoticeRule = Callable[[MonitorState, str, Any], Notice | None]


def _attention(state: MonitorState, account: str, event: PositionNeedsAttention) -> Notice | None:
    return attention_notice(
        event.reason,
        cause_id=event.event_id,
        underlying=event.underlying,
        message=event.message,
        email_topics=state.topics(account),
        position_id=event.position_id,
        order_id=event.order_id,
    )


def _spread_closed(state: MonitorState, account: str, event: SpreadClosed) -> Notice | None:
    if event.closing_order_id is None or event.exit_debit is None:
        return None  # closed without an exit order of the monitor's: nothing to tell
    record = state.position(account, event.position_id)
    close = SpreadClose(
        spread_kind=event.spread_kind,
        reason=event.reason,
        closing_order_id=event.closing_order_id,
        exit_debit=event.exit_debit,
        realized_pnl=event.realized_pnl,
    )
    return spread_closed_notice(
        close,
        cause_id=event.event_id,
        underlying=record.underlying if record is not None else "position",
        email_topics=state.topics(account),
        position_id=event.position_id,
    )


def _suspended(state: MonitorState, account: str, event: TradingSuspended) -> Notice | None:
    return notice(
        NotificationTopic.TRADING_SUSPENDED,
        cause_id=event.event_id,
        title=f"trading suspended ({event.reason.value})",
        message=event.message,
        email_topics=state.topics(account),
    )


#: The events that notify the user, each with its rule.
NOTICES: Mapping[type[Event], NoticeRule] = {
    PositionNeedsAttention: _attention,
    SpreadClosed: _spread_closed,
    TradingSuspended: _suspended,
}


def notice_of(state: MonitorState, account: str, event: Event) -> Notice | None:
    """The notification ``event`` of ``account`` asks for, if any (routing and topics)."""
    rule = NOTICES.get(type(event))
    return rule(state, account, event) if rule is not None else None


class Notifications:
    """Reacts to live events: asks for notifications, hands e-mails to the notifier."""

    def __init__(
        self,
        shell: ServiceShell,
        state: MonitorState,
        notifier: EmailNotifier,
        log: BoundLogger,
    ) -> None:
        self._shell = shell
        self._state = state
        self._notifier = notifier
        self._log = log
        self._reactions = Reactions(
            {
                NotificationRequested: self._email,
                **{event_type: self._request for event_type in NOTICES},
            }
        )

    async def react(self, event: Event) -> None:
        """The reaction to one live event of an account (others pass)."""
        if event.account_id is None:
            return
        await self._reactions(event)

    async def _email(self, event: NotificationRequested) -> None:
        try:
            self._notifier.submit(event)
        except NotifierStopped:
            self._log.warning("notifier stopped; e-mail not queued", event_id=str(event.event_id))

    async def _request(self, event: Event) -> None:
        account = event.account_id
        assert account is not None
        found = notice_of(self._state, account, event)
        if found is None or found.notification_id in self._state.notified:
            return
        # No wait for the fold: nothing here reads this event back (its id derives from
        # the cause, so the bus drops a copy asked for twice).
        await self._shell.bus.publish(
            NotificationRequested(
                event_id=found.notification_id,
                **self._shell.envelope(account, event.causation()),
                **found.event_fields(),
            )
        )
