"""Account context: linked broker accounts, user settings, broker balances.

The gateway owns users and settings and publishes them as events; every service folds
them into its own projection. No secret ever appears here: credentials stay in the
vault behind ``libs/broker``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from libs.contracts.base import (
    AwareDatetime,
    ContractModel,
    EnumSet,
    Money,
    Underlying,
    UserId,
)
from libs.contracts.envelope import AccountEvent
from libs.contracts.risk import RiskTemplate
from libs.contracts.system import NotificationTopic

_CONTEXT = "account"


class TradingMode(StrEnum):
    """Paper trades against the simulator; live against the real broker."""

    PAPER = "PAPER"
    LIVE = "LIVE"


class AccountSettings(ContractModel):
    """Everything a user configures for an account (a complete snapshot)."""

    risk_template: RiskTemplate
    automation_enabled: bool = False
    """Generate at 10:00 New York time and approve automatically."""
    automation_offset_cents: int = Field(default=0, ge=0, le=1000)
    """Cents the automatic limit concedes from mid toward the natural price."""
    underlyings: EnumSet[Underlying] = (Underlying.QQQ, Underlying.SPY)
    """The underlyings enabled for suggestions (a subset of QQQ and SPY)."""
    email_topics: EnumSet[NotificationTopic] = tuple(NotificationTopic)
    """Topics the user wants e-mails for."""
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    """Where the account's e-mails go; null: no e-mail (banner and flag still show)."""


class AccountLinked(AccountEvent):
    """A user linked a broker account; ``account_id`` is the broker account number."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["AccountLinked"] = "AccountLinked"
    user_id: UserId
    mode: TradingMode
    nickname: str | None = Field(default=None, max_length=100)

    @property
    def account_number(self) -> str:
        """The broker account number (the envelope's ``account_id``)."""
        return self.account_id


class AccountSettingsChanged(AccountEvent):
    """The account's settings are now ``settings`` (the whole snapshot, not a diff)."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["AccountSettingsChanged"] = "AccountSettingsChanged"
    user_id: UserId
    """Who changed them."""
    settings: AccountSettings


class BalanceUpdated(AccountEvent):
    """The broker's balances for the account (the source of truth)."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["BalanceUpdated"] = "BalanceUpdated"
    derivative_buying_power: Money
    """Buying power for options: the base of tradeable capital (negative in a margin call)."""
    net_liquidating_value: Money
    cash_balance: Money
    equity_buying_power: Money | None = None
    maintenance_requirement: Money | None = None
    broker_updated_at: AwareDatetime
    """The broker's timestamp of the balance."""
