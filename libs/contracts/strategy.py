"""Strategy context: Senex Trident suggestions and what happens to them.

A suggestion is three credit spreads on one underlying and expiration (DOMAIN.md 1):
put spread 1 and put spread 2 on the same strikes, and a call spread unless the price
is at or outside a Bollinger band. Credits are per share; dollar figures x 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from libs.contracts.base import (
    AwareDatetime,
    ContractModel,
    Money,
    NonNegativeMoney,
    Percent,
    PositiveMoney,
    Ticker,
    UserId,
)
from libs.contracts.envelope import AccountEvent
from libs.contracts.errors import ErrorKind
from libs.contracts.market import BollingerBands, Greeks, Quote
from libs.contracts.risk import RiskAssessment, WarningLevel
from libs.contracts.symbols import OccSymbol, OptionType

_TWO = Decimal(2)

#: Suggestions not acted on expire this long after creation (DOMAIN.md 6).
SUGGESTION_TTL = timedelta(hours=24)


class SpreadKind(StrEnum):
    """The three spreads of a Trident, each bookkept and exited on its own."""

    PUT_SPREAD_1 = "PUT_SPREAD_1"
    PUT_SPREAD_2 = "PUT_SPREAD_2"
    CALL_SPREAD = "CALL_SPREAD"

    @property
    def option_type(self) -> OptionType:
        """PUT for the put spreads, CALL for the call spread."""
        return OptionType.CALL if self is SpreadKind.CALL_SPREAD else OptionType.PUT

    @property
    def profit_target(self) -> Decimal:
        """The system-controlled profit target (fraction of entry credit)."""
        return PROFIT_TARGETS[self]


#: Profit target per spread (DOMAIN.md 1, system-controlled).
PROFIT_TARGETS: Mapping[SpreadKind, Decimal] = MappingProxyType(
    {
        SpreadKind.PUT_SPREAD_1: Decimal("0.40"),
        SpreadKind.PUT_SPREAD_2: Decimal("0.60"),
        SpreadKind.CALL_SPREAD: Decimal("0.50"),
    }
)


def check_spread_geometry(
    kind: SpreadKind, short_symbol: OccSymbol, long_symbol: OccSymbol
) -> Decimal:
    """Check a credit spread's legs fit its kind; returns the width.

    Both legs carry the kind's option type and one expiration; the long strike lies
    below the short for puts and above it for calls.
    """
    short, long = short_symbol.contract, long_symbol.contract
    if short.option_type is not kind.option_type or long.option_type is not kind.option_type:
        raise ValueError(f"{kind} legs must both be {kind.option_type} options")
    if short.expiration != long.expiration or short.root != long.root:
        raise ValueError(f"{kind} legs must share root and expiration")
    width = (
        short.strike - long.strike
        if kind.option_type is OptionType.PUT
        else (long.strike - short.strike)
    )
    if width <= 0:
        side = "below" if kind.option_type is OptionType.PUT else "above"
        raise ValueError(f"{kind}: the long strike must lie {side} the short strike")
    return width


class SpreadLeg(ContractModel):
    """One option of a suggested spread, priced from its live quote."""

    symbol: OccSymbol
    bid: NonNegativeMoney
    ask: NonNegativeMoney
    mid: NonNegativeMoney
    """(bid + ask) / 2."""

    @model_validator(mode="after")
    def _mid_is_mid(self) -> SpreadLeg:
        if self.mid != (self.bid + self.ask) / _TWO:
            raise ValueError("mid must equal (bid + ask) / 2")
        return self


class SuggestedSpread(ContractModel):
    """A credit spread: sell ``short_leg``, buy ``long_leg``, one spread."""

    kind: SpreadKind
    short_leg: SpreadLeg
    long_leg: SpreadLeg
    natural_credit: Money
    """Short bid - long ask (per share); can be negative in a wide market."""
    mid_credit: Money
    """Short mid - long mid (per share)."""

    @model_validator(mode="after")
    def _consistent(self) -> SuggestedSpread:
        check_spread_geometry(self.kind, self.short_leg.symbol, self.long_leg.symbol)
        if self.natural_credit != self.short_leg.bid - self.long_leg.ask:
            raise ValueError("natural_credit must equal short bid - long ask")
        if self.mid_credit != self.short_leg.mid - self.long_leg.mid:
            raise ValueError("mid_credit must equal short mid - long mid")
        return self

    @property
    def short_strike(self) -> Decimal:
        """Strike of the sold option."""
        return self.short_leg.symbol.strike

    @property
    def long_strike(self) -> Decimal:
        """Strike of the bought option."""
        return self.long_leg.symbol.strike

    @property
    def width(self) -> Decimal:
        """Distance between the strikes."""
        return abs(self.short_strike - self.long_strike)


class Suggestion(ContractModel):
    """A complete Senex Trident proposal, as reviewed by the user."""

    suggestion_id: UUID
    created_at: AwareDatetime
    expires_at: AwareDatetime
    """Created + 24 h (``SUGGESTION_TTL``)."""
    underlying: Ticker
    underlying_price: NonNegativeMoney
    """The underlying's quote mid at generation time."""
    expiration: date
    dte: int = Field(ge=0)
    """Calendar days from the New York date of creation to the expiration."""
    base_strike: PositiveMoney
    """K = 2 x round(price / 2), before adjusting to a listed strike."""
    short_strike: PositiveMoney
    """K': the short strike of every spread."""
    width: PositiveMoney
    """W: distance between short and long strikes."""
    tradeable_capital: NonNegativeMoney
    """The capital the width was chosen from."""
    spreads: tuple[SuggestedSpread, ...] = Field(min_length=2, max_length=3)
    """Put spread 1, put spread 2 and, unless near a band, the call spread, in that order."""
    near_bollinger_band: bool
    """At or outside a Bollinger band: the call spread is left out."""
    band_reason: str | None = None
    """Why the call spread was left out; required when near a band."""
    bands: BollingerBands | None = None
    """The bands the decision used, when known."""
    stressed: bool = False
    """The market was judged stressed (price at or below the lower band) at generation."""
    total_natural_credit: Money
    """Sum of the spreads' natural credits (per share)."""
    total_mid_credit: Money
    """Sum of the spreads' mid credits (per share)."""
    max_profit: Money
    """Total mid credit x 100."""
    max_risk: Money
    """(2 x W x 100) - total mid credit x 100."""
    required_capital: NonNegativeMoney
    """2 x W x 100."""
    iv_rank: Percent | None = None
    """The underlying's IV rank (0-100); null when the broker offered none."""
    position_greeks: Greeks | None = None
    """Greeks of the whole position; null when IV could not be implied from the quotes."""
    quotes: tuple[Quote, ...] = Field(min_length=1)
    """The quotes the suggestion was priced from (underlying and every leg)."""

    @model_validator(mode="after")
    def _consistent(self) -> Suggestion:
        kinds = tuple(spread.kind for spread in self.spreads)
        expected: tuple[SpreadKind, ...] = (SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2)
        if not self.near_bollinger_band:
            expected += (SpreadKind.CALL_SPREAD,)
        if kinds != expected:
            raise ValueError(
                f"spreads must be {', '.join(expected)} in that order "
                f"(near_bollinger_band={self.near_bollinger_band}), got {', '.join(kinds)}"
            )
        if self.near_bollinger_band and not self.band_reason:
            raise ValueError("band_reason is required when near_bollinger_band is true")
        for spread in self.spreads:
            if spread.short_leg.symbol.expiration != self.expiration:
                raise ValueError(f"{spread.kind} expires on another date than {self.expiration}")
            if spread.short_strike != self.short_strike or spread.width != self.width:
                raise ValueError(f"{spread.kind} strikes do not match short_strike and width")
        if self.total_natural_credit != sum(s.natural_credit for s in self.spreads):
            raise ValueError("total_natural_credit must be the sum of the spreads'")
        if self.total_mid_credit != sum(s.mid_credit for s in self.spreads):
            raise ValueError("total_mid_credit must be the sum of the spreads'")
        if self.expires_at <= self.created_at:
            raise ValueError("expires_at must be after created_at")
        return self

    @property
    def includes_call_spread(self) -> bool:
        """Whether the call spread is part of the trade."""
        return not self.near_bollinger_band

    def spread(self, kind: SpreadKind) -> SuggestedSpread | None:
        """The spread of ``kind``, or None when it is left out."""
        return next((s for s in self.spreads if s.kind is kind), None)


class SkipReason(StrEnum):
    """Why no suggestion was made; each value is also an ``ErrorKind``."""

    POSITION_LIMIT = "POSITION_LIMIT"
    NO_EXPIRATION = "NO_EXPIRATION"
    STRIKE_NOT_FOUND = "STRIKE_NOT_FOUND"
    CONFLICTING_POSITION = "CONFLICTING_POSITION"
    MARKET_DATA_STALE = "MARKET_DATA_STALE"
    NO_CREDIT = "NO_CREDIT"
    TRADING_SUSPENDED = "TRADING_SUSPENDED"

    @property
    def error_kind(self) -> ErrorKind:
        """The error kind a GenerateSuggestion caller receives."""
        return ErrorKind(self.value)


class SuggestionStatus(StrEnum):
    """Lifecycle of a suggestion."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class SuggestionGenerated(AccountEvent):
    """A suggestion was made and awaits review (or automatic approval)."""

    CONTEXT: ClassVar[str] = "strategy"
    type: Literal["SuggestionGenerated"] = "SuggestionGenerated"
    suggestion: Suggestion
    automatic: bool = False
    """Generated by the daily automation rather than by the user."""
    reason_trail: tuple[str, ...] = ()
    """Each check's outcome, in the order the core ran them (DOMAIN.md 2.6)."""
    risk_free_rate: Decimal | None = Field(default=None, ge=0, le=1)
    """The annual rate the Greeks were computed with (fraction)."""


class SuggestionSkipped(AccountEvent):
    """No trade: generation stopped for ``reason_code`` (a reasoned "no suggestion")."""

    CONTEXT: ClassVar[str] = "strategy"
    type: Literal["SuggestionSkipped"] = "SuggestionSkipped"
    underlying: Ticker
    reason_code: SkipReason
    message: str = Field(min_length=1)
    """What a user reads, e.g. which strikes were missing or which spread conflicts."""
    expiration: date | None = None
    """The expiration considered, when one was chosen."""
    details: dict[str, str] = Field(default_factory=dict)
    automatic: bool = False
    reason_trail: tuple[str, ...] = ()
    """Each check's outcome up to the one that stopped generation."""


class SuggestionApproved(AccountEvent):
    """The user (or the automation) approved a suggestion at a limit credit."""

    CONTEXT: ClassVar[str] = "strategy"
    type: Literal["SuggestionApproved"] = "SuggestionApproved"
    suggestion_id: UUID
    limit_credit: PositiveMoney
    """The order's limit price (a credit, TastyTrade units: per unit of the leg ratio)."""
    custom_credit: PositiveMoney | None = None
    """The user's override as entered (total-credit units); null when the mid was used."""
    automatic: bool = False
    """Approved by the automation at mid conceded by the configured offset."""
    approved_by: UserId | None = None
    """The approving user; null for automatic approvals."""
    warning_level: WarningLevel = WarningLevel.NONE
    """The utilisation warning of the suggestion's risk check."""
    warning_confirmed: bool = False
    """The user explicitly confirmed the warning."""

    @model_validator(mode="after")
    def _consistent(self) -> SuggestionApproved:
        if self.automatic and (self.custom_credit is not None or self.approved_by is not None):
            raise ValueError("an automatic approval has no custom_credit and no approved_by")
        if (
            not self.automatic
            and self.warning_level is not WarningLevel.NONE
            and not self.warning_confirmed
        ):
            raise ValueError(
                f"approval at warning level {self.warning_level} needs warning_confirmed"
            )
        return self


class SuggestionRejected(AccountEvent):
    """The user turned a suggestion down."""

    CONTEXT: ClassVar[str] = "strategy"
    type: Literal["SuggestionRejected"] = "SuggestionRejected"
    suggestion_id: UUID
    rejected_by: UserId | None = None
    reason: str | None = None


class SuggestionExpired(AccountEvent):
    """A suggestion was not acted on within 24 h."""

    CONTEXT: ClassVar[str] = "strategy"
    type: Literal["SuggestionExpired"] = "SuggestionExpired"
    suggestion_id: UUID
    expires_at: AwareDatetime


class SuggestionView(ContractModel):
    """A suggestion with its current status and risk check (query answer)."""

    suggestion: Suggestion
    status: SuggestionStatus
    risk_check_passed: bool | None = None
    """Null while the risk check is pending."""
    risk_check_message: str | None = None
    """Why the risk check failed."""
    assessment: RiskAssessment | None = None
    """The risk check's figures, including the warning level shown before approval."""
