"""Request and response bodies of the REST API (the contracts' models where they fit).

Requests refuse unknown fields, so a misspelt ``confirm_warnings`` is a 422 naming it
instead of a silently ignored confirmation.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from libs.contracts.account import AccountSettings, TradingMode
from libs.contracts.base import AccountId, PositiveMoney, Underlying
from libs.contracts.risk import WarningLevel


class ApiModel(BaseModel):
    """Base of the API's own bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


# --- auth ----------------------------------------------------------------------------


class LoginRequest(ApiModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(ApiModel):
    user_id: str
    csrf_token: str
    """Send it back as the X-CSRF-Token header on every state-changing request."""
    expires_at: datetime


class AccountOut(ApiModel):
    """A linked broker account (never its credentials)."""

    account_number: str
    mode: TradingMode
    nickname: str | None
    linked_at: datetime


class UserOut(ApiModel):
    user_id: str
    created_at: datetime


class MeResponse(ApiModel):
    user: UserOut
    accounts: list[AccountOut]
    mode: TradingMode
    """The system's trading mode: what a new link is made for."""
    csrf_token: str
    """The session's CSRF token (a reloaded page gets it here)."""


class LogoutResponse(ApiModel):
    logged_out: bool = True


# --- settings and broker link ----------------------------------------------------------


class SettingsResponse(ApiModel):
    account_number: str
    settings: AccountSettings


class BrokerLinkStatus(ApiModel):
    """The user's links and the mode new links are made for; secrets are write-only."""

    mode: TradingMode
    linked: bool
    accounts: list[AccountOut]


class BrokerLinkRequest(ApiModel):
    """Link a broker account.

    Live: the OAuth client secret and refresh token (checked with the broker, then
    stored encrypted; never returned). Paper: omit both to get a new simulator customer
    of your own, or give a simulator customer's pair.
    """

    mode: TradingMode
    client_secret: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    refresh_token: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    account_number: AccountId | None = None
    """Needed when the credentials reach several accounts."""
    nickname: str | None = Field(default=None, max_length=100)


# --- trading ---------------------------------------------------------------------------


class GenerateRequest(ApiModel):
    symbol: Underlying
    """The underlying to suggest a Senex Trident for."""


class ExecuteRequest(ApiModel):
    custom_credit: PositiveMoney | None = None
    """Limit override in total-credit units (per share); null = the mid credit."""
    confirm_warning: bool = False
    """Required when the suggestion's risk check carries a utilisation warning."""


class RejectRequest(ApiModel):
    reason: str | None = Field(default=None, max_length=500)


class ValidateTradeRiskRequest(ApiModel):
    suggestion_id: UUID
    custom_credit: PositiveMoney | None = None
    """The credit to check at (total-credit units); null = the suggestion's mid credit."""


class TradeRiskValidation(ApiModel):
    """Whether the suggestion may be executed at ``credit`` now, and why not."""

    valid: bool
    message: str
    warning: str | None
    """A text to confirm before executing; null when no warning applies."""
    warning_level: WarningLevel
    requires_confirmation: bool
    """Execute must then carry confirm_warning: true."""
    suggestion_id: UUID
    credit: Decimal
    """Total credit per share the figures use."""
    max_risk: Decimal
    max_profit: Decimal
    available_risk: Decimal
    used_risk: Decimal
    remaining_risk: Decimal
    utilisation_after: Decimal | None
    """(used + this trade's max risk) / available; null when nothing is available."""
