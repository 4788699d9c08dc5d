"""System context: trading suspension and notifications to the user.

Both are per account: broker sessions are opened per account, so a broker outage is
observed, and trading suspended, account by account.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from libs.contracts.base import EnumSet
from libs.contracts.envelope import AccountEvent
from libs.contracts.errors import ErrorKind

_CONTEXT = "system"


class NotificationChannel(StrEnum):
    """Where a notification goes."""

    EMAIL = "EMAIL"
    BANNER = "BANNER"
    """A banner on the user's open screens."""
    DASHBOARD_FLAG = "DASHBOARD_FLAG"
    """A flag that stays on the dashboard until dealt with."""


class NotificationTopic(StrEnum):
    """What a notification is about; users choose which topics reach them by e-mail."""

    ORDER_FILLED = "ORDER_FILLED"
    PARTIAL_FILL = "PARTIAL_FILL"
    PROFIT_TARGET = "PROFIT_TARGET"
    STOP_LOSS = "STOP_LOSS"
    TIME_EXIT = "TIME_EXIT"
    ORDER_FAILED = "ORDER_FAILED"
    POSITION_CLOSED_EXTERNALLY = "POSITION_CLOSED_EXTERNALLY"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    API_ERROR = "API_ERROR"
    TRADING_SUSPENDED = "TRADING_SUSPENDED"


class Severity(StrEnum):
    """How loudly to show a notification."""

    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class TradingSuspended(AccountEvent):
    """No new orders for the account until TradingResumed."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["TradingSuspended"] = "TradingSuspended"
    reason: ErrorKind
    """What caused it, e.g. BROKER_UNAVAILABLE or AUTH_FAILED."""
    message: str = Field(min_length=1)


class TradingResumed(AccountEvent):
    """Trading is allowed again for the account."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["TradingResumed"] = "TradingResumed"
    message: str = Field(min_length=1)


class NotificationRequested(AccountEvent):
    """Tell the account's user something, on these channels.

    E-mail is sent only if the user's settings include the topic; banner and flag always
    show.
    """

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["NotificationRequested"] = "NotificationRequested"
    notification_id: UUID
    topic: NotificationTopic
    channels: EnumSet[NotificationChannel] = Field(min_length=1)
    severity: Severity
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1)
    position_id: UUID | None = None
    order_id: UUID | None = None
