"""Risk context: the risk budget, the check on a suggestion, reservations on approval.

Execution acts on ``RiskReserved`` only: a reservation is what turns an approved
suggestion into an order, and ``RiskReleased`` gives the amount back once the order
ends (filled orders hand their risk over to the open position).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from libs.contracts.base import (
    AwareDatetime,
    ContractModel,
    Money,
    NonNegativeDecimal,
    NonNegativeMoney,
    PositiveMoney,
    Ratio,
    Ticker,
)
from libs.contracts.envelope import AccountEvent
from libs.contracts.errors import ErrorKind


class RiskTemplate(StrEnum):
    """The user's risk tolerance template (DOMAIN.md 4)."""

    CONSERVATIVE = "CONSERVATIVE"
    MODERATE = "MODERATE"
    AGGRESSIVE = "AGGRESSIVE"


class WarningLevel(StrEnum):
    """Utilisation after the trade against the template's two warning thresholds."""

    NONE = "NONE"
    WARNING = "WARNING"
    """At or above the first threshold (65 / 70 / 75 %)."""
    CRITICAL = "CRITICAL"
    """At or above the second threshold (80 / 85 / 90 %)."""


class ReleaseReason(StrEnum):
    """Why a reservation was given back."""

    FILLED = "FILLED"
    """The order filled: its risk now counts as the open position's max risk."""
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    """The order ended partly filled; the leftover is an unmanaged position."""
    FAILED = "FAILED"
    """The order never reached the broker (retries exhausted, broker unavailable)."""


class RiskAssessment(ContractModel):
    """The risk budget as seen for one trade, with the figures behind the verdict."""

    template: RiskTemplate
    base_tolerance: Ratio
    """The template's tolerance (0.40 / 0.50 / 0.60)."""
    stressed: bool
    """The trade's underlying was stressed at the time of the check."""
    tolerance: Ratio
    """The tolerance applied: min(base x 1.5, 0.60) when stressed, else the base."""
    buying_power: Money
    """The broker's derivative buying power."""
    tradeable_capital: Money
    """Buying power + max risk of open app-managed positions."""
    available_risk: Money
    """Tradeable capital x tolerance."""
    used_risk: NonNegativeMoney
    """Max risk of open app-managed positions + pending reservations."""
    remaining_risk: Money
    """Available - used; negative when over budget."""
    trade_max_risk: NonNegativeMoney
    """This trade's max risk, at the credit the check used."""
    utilisation: NonNegativeDecimal | None
    """(used + trade max risk) / available: after the trade, 1 = 100 %.

    Null when available risk is not above zero (nothing can be traded).
    """
    warning_level: WarningLevel
    dry_run_buying_power_change: Money | None = None
    """The broker dry run's change in buying power; null when no dry run was made."""


class RiskCheckPassed(AccountEvent):
    """A suggestion fits the budget; ``assessment.warning_level`` is shown before approval."""

    CONTEXT: ClassVar[str] = "risk"
    type: Literal["RiskCheckPassed"] = "RiskCheckPassed"
    suggestion_id: UUID
    assessment: RiskAssessment


class RiskCheckFailed(AccountEvent):
    """A suggestion does not fit the budget (or the broker's buying power)."""

    CONTEXT: ClassVar[str] = "risk"
    type: Literal["RiskCheckFailed"] = "RiskCheckFailed"
    suggestion_id: UUID
    reason: ErrorKind
    """RISK_BUDGET_EXCEEDED, INSUFFICIENT_BUYING_POWER, TRADING_SUSPENDED..."""
    message: str = Field(min_length=1)
    assessment: RiskAssessment | None
    """The figures, when they could be computed."""


class RiskReserved(AccountEvent):
    """Risk is set aside for an approved suggestion; execution may now place its order."""

    CONTEXT: ClassVar[str] = "risk"
    type: Literal["RiskReserved"] = "RiskReserved"
    reservation_id: UUID
    suggestion_id: UUID
    amount: NonNegativeMoney
    """The max risk reserved, at ``limit_credit``."""
    limit_credit: PositiveMoney
    """The approved order's limit price (order units, as in SuggestionApproved)."""
    assessment: RiskAssessment


class RiskReservationFailed(AccountEvent):
    """An approved suggestion could not reserve risk; no order will be placed."""

    CONTEXT: ClassVar[str] = "risk"
    type: Literal["RiskReservationFailed"] = "RiskReservationFailed"
    suggestion_id: UUID
    reason: ErrorKind
    """RISK_BUDGET_EXCEEDED, INSUFFICIENT_BUYING_POWER, RISK_WARNING_UNCONFIRMED..."""
    message: str = Field(min_length=1)
    assessment: RiskAssessment | None


class RiskReleased(AccountEvent):
    """A reservation is given back."""

    CONTEXT: ClassVar[str] = "risk"
    type: Literal["RiskReleased"] = "RiskReleased"
    reservation_id: UUID
    suggestion_id: UUID
    amount: NonNegativeMoney
    reason: ReleaseReason
    order_id: UUID | None = None
    """The order whose end released the reservation, if one was placed."""


class RiskBudgetView(ContractModel):
    """The account's risk budget now, without any new trade (query answer)."""

    template: RiskTemplate
    base_tolerance: Ratio
    buying_power: Money
    tradeable_capital: Money
    available_risk: Money
    open_positions_max_risk: NonNegativeMoney
    """Max risk of open app-managed positions."""
    reserved_risk: NonNegativeMoney
    """Pending reservations (approved, not yet filled or released)."""
    used_risk: NonNegativeMoney
    remaining_risk: Money
    utilisation: NonNegativeDecimal | None
    """Used / available, 1 = 100 %; null when available risk is not above zero."""
    warning_level: WarningLevel = WarningLevel.NONE
    """The template's warning level the current utilisation reaches (no new trade)."""
    stressed_underlyings: tuple[Ticker, ...] = ()
    """Underlyings whose market is stressed now (their trades get the stressed tolerance)."""
    open_positions: int = Field(ge=0)
    as_of: AwareDatetime
