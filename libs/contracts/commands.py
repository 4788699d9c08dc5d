"""Commands and queries (NATS request-reply) and their typed replies.

A command is imperative and answered by the one service owning it (``SERVICE``) on
``senex.cmd.<service>.<verb>.<account>``. The answer is the command's ``REPLY`` model
or an ``ErrorReply``; both carry ``type`` so a caller can tell them apart.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, JsonValue, model_validator

from libs.contracts.base import (
    AccountId,
    AwareDatetime,
    ContractModel,
    EnumSet,
    Money,
    NonNegativeMoney,
    Percent,
    PositiveMoney,
    Underlying,
    UserId,
)
from libs.contracts.envelope import Causation, new_event_id, schema_version_field
from libs.contracts.execution import CancelReason, OrderLeg, OrderPurpose, OrderView
from libs.contracts.market import BandPosition, BollingerBands, Quote
from libs.contracts.positions import PositionView
from libs.contracts.risk import RiskBudgetView, WarningLevel
from libs.contracts.strategy import SpreadKind, SuggestionView
from libs.contracts.symbols import MarketSymbol


class Reply(ContractModel):
    """Base of every successful reply; ``type`` is the class name."""

    type: str


class Command(ContractModel):
    """Base of every command and query.

    Subclasses set ``type`` (a ``Literal`` of the class name), ``SERVICE`` (the owning
    service), ``VERB`` (the subject token) and ``REPLY`` (the success reply model).
    """

    SERVICE: ClassVar[str] = ""
    VERB: ClassVar[str] = ""
    REPLY: ClassVar[type[Reply]] = Reply

    type: str
    schema_version: int = schema_version_field(1)
    command_id: UUID = Field(default_factory=new_event_id)
    """Unique id; events caused by the command carry it as causation_id."""
    account_id: AccountId
    """The account the command acts on (and the caller is authorised for)."""
    correlation_id: UUID = Field(default_factory=new_event_id)
    """Carried by every event the command leads to."""
    requested_by: UserId | None = None
    """The user, or null for the system itself (schedules, automation)."""

    def causation(self) -> Causation:
        """Envelope fields for an event this command caused."""
        return {"correlation_id": self.correlation_id, "causation_id": self.command_id}


# --- replies ---------------------------------------------------------------------------


class SuggestionReply(Reply):
    """One suggestion with its status and risk check."""

    type: Literal["SuggestionReply"] = "SuggestionReply"
    suggestion: SuggestionView


class SuggestionListReply(Reply):
    """Suggestions of the account, newest first."""

    type: Literal["SuggestionListReply"] = "SuggestionListReply"
    suggestions: tuple[SuggestionView, ...]


class ApprovalReply(Reply):
    """The approval is recorded; risk reservation and the order follow as events."""

    type: Literal["ApprovalReply"] = "ApprovalReply"
    suggestion_id: UUID
    limit_credit: PositiveMoney
    """The order's limit price (TastyTrade units)."""
    warning_level: WarningLevel


class RiskBudgetReply(Reply):
    """The account's risk budget."""

    type: Literal["RiskBudgetReply"] = "RiskBudgetReply"
    budget: RiskBudgetView


class OrderReply(Reply):
    """One order."""

    type: Literal["OrderReply"] = "OrderReply"
    order: OrderView


class OrderListReply(Reply):
    """Orders of the account, newest first."""

    type: Literal["OrderListReply"] = "OrderListReply"
    orders: tuple[OrderView, ...]


class PositionReply(Reply):
    """One position."""

    type: Literal["PositionReply"] = "PositionReply"
    position: PositionView


class PositionListReply(Reply):
    """Positions of the account."""

    type: Literal["PositionListReply"] = "PositionListReply"
    positions: tuple[PositionView, ...]


class ClosePositionReply(Reply):
    """The exit orders decided for the position; fills follow as events."""

    type: Literal["ClosePositionReply"] = "ClosePositionReply"
    position_id: UUID
    exit_order_ids: tuple[UUID, ...]


class SyncPositionsReply(Reply):
    """The account's positions after reconciling them with the broker."""

    type: Literal["SyncPositionsReply"] = "SyncPositionsReply"
    positions: tuple[PositionView, ...]
    synced_at: AwareDatetime
    """When the broker's positions were read (business clock)."""


class QuotesReply(Reply):
    """The latest quotes held by market data."""

    type: Literal["QuotesReply"] = "QuotesReply"
    quotes: tuple[Quote, ...]
    missing: tuple[str, ...] = ()
    """Symbols asked for that have no quote."""


class WatchReply(Reply):
    """The symbols market data now streams for the caller, and until when."""

    type: Literal["WatchReply"] = "WatchReply"
    symbols: tuple[str, ...]
    watched_until: AwareDatetime
    """The lease's end (business clock); renew before it to keep the quotes coming."""


class ChainStrikeQuotes(ContractModel):
    """One listed strike and the latest quote of each side (null: none yet)."""

    strike: PositiveMoney
    put: Quote | None = None
    call: Quote | None = None


class ChainSnapshotExpiration(ContractModel):
    """The strikes of one expiration inside the snapshot's window, ascending."""

    expiration: date
    dte: int = Field(ge=0)
    """Calendar days from the New York date of ``as_of``."""
    strikes: tuple[ChainStrikeQuotes, ...]


class ChainSnapshotReply(Reply):
    """An underlying's option chain near the money, priced from market data's cache."""

    type: Literal["ChainSnapshotReply"] = "ChainSnapshotReply"
    underlying: Underlying
    as_of: AwareDatetime
    underlying_quote: Quote
    """The underlying's latest quote; strikes are chosen around its mid."""
    expirations: tuple[ChainSnapshotExpiration, ...]
    """Expirations inside the requested DTE range, ascending."""
    missing: tuple[str, ...] = ()
    """Option symbols inside the window still without a quote when the reply was made."""


class MarketConditionReply(Reply):
    """An underlying's price, Bollinger bands, stress, IV rank and the risk-free rate."""

    type: Literal["MarketConditionReply"] = "MarketConditionReply"
    underlying: Underlying
    as_of: AwareDatetime
    quote: Quote
    """The latest quote; ``price`` is its mid."""
    price: NonNegativeMoney
    daily_closes: tuple[PositiveMoney, ...] = Field(min_length=1)
    """The completed sessions' closes before today, oldest first (19 for the bands)."""
    bands: BollingerBands
    """Bands over the 19 closes and ``price`` (DOMAIN.md 3)."""
    band_position: BandPosition
    stressed: bool
    stressed_reason: str | None = None
    iv_rank: Percent | None = None
    """The broker's IV rank (0-100); null when it offered none."""
    risk_free_rate: Decimal = Field(ge=0, le=1)
    """Annual rate as a fraction (0.045 = 4.5 %)."""
    risk_free_rate_source: Literal["BROKER", "FALLBACK"]


class DecisionSnapshotReply(Reply):
    """The snapshot a generation would decide from now (``senex suggest`` input format)."""

    type: Literal["DecisionSnapshotReply"] = "DecisionSnapshotReply"
    snapshot: dict[str, JsonValue]


class RecordedEvent(ContractModel):
    """One row of the event log."""

    position: int = Field(ge=1)
    """Global position (the business stream's sequence)."""
    event_id: UUID | None
    type: str | None
    account_id: str | None
    occurred_at: AwareDatetime | None
    valid: bool
    """False for a message that did not parse against the contracts (stored as-is)."""
    data: dict[str, JsonValue] | None
    """The flat event as recorded, when it was a JSON object."""
    raw: str | None = None
    """The message text, when it was not a JSON object."""


class EventPageReply(Reply):
    """A page of the event log in position order."""

    type: Literal["EventPageReply"] = "EventPageReply"
    events: tuple[RecordedEvent, ...]
    next_after_position: int | None = None
    """Pass as ``after_position`` to read on; null at the end."""


class VerifyReply(Reply):
    """Result of checking the event log's hash chain."""

    type: Literal["VerifyReply"] = "VerifyReply"
    ok: bool
    checked: int = Field(ge=0)
    first_bad_position: int | None = None
    message: str


# --- strategy --------------------------------------------------------------------------


class GenerateSuggestion(Command):
    """Make a Trident suggestion for ``underlying``; a no-trade outcome is an ErrorReply."""

    SERVICE = "strategy"
    VERB = "generate_suggestion"
    REPLY = SuggestionReply
    type: Literal["GenerateSuggestion"] = "GenerateSuggestion"
    underlying: Underlying
    automatic: bool = False
    """Issued by the daily automation."""


class GetSuggestion(Command):
    """One suggestion by id."""

    SERVICE = "strategy"
    VERB = "get_suggestion"
    REPLY = SuggestionReply
    type: Literal["GetSuggestion"] = "GetSuggestion"
    suggestion_id: UUID


class GetSuggestions(Command):
    """The account's suggestions."""

    SERVICE = "strategy"
    VERB = "get_suggestions"
    REPLY = SuggestionListReply
    type: Literal["GetSuggestions"] = "GetSuggestions"
    pending_only: bool = True


class ApproveSuggestion(Command):
    """Approve a suggestion at mid, or at the user's ``custom_credit``."""

    SERVICE = "strategy"
    VERB = "approve_suggestion"
    REPLY = ApprovalReply
    type: Literal["ApproveSuggestion"] = "ApproveSuggestion"
    suggestion_id: UUID
    custom_credit: PositiveMoney | None = None
    """Limit override in the suggestion's total-credit units; null = mid."""
    confirm_warning: bool = False
    """Required when the risk check carries a utilisation warning."""


class RejectSuggestion(Command):
    """Turn a suggestion down."""

    SERVICE = "strategy"
    VERB = "reject_suggestion"
    REPLY = SuggestionReply
    type: Literal["RejectSuggestion"] = "RejectSuggestion"
    suggestion_id: UUID
    reason: str | None = None


class GetDecisionSnapshot(Command):
    """The inputs a generation for ``underlying`` would use now, without deciding."""

    SERVICE = "strategy"
    VERB = "get_decision_snapshot"
    REPLY = DecisionSnapshotReply
    type: Literal["GetDecisionSnapshot"] = "GetDecisionSnapshot"
    underlying: Underlying


# --- risk ------------------------------------------------------------------------------


class GetRiskBudget(Command):
    """The account's risk budget now."""

    SERVICE = "risk"
    VERB = "get_risk_budget"
    REPLY = RiskBudgetReply
    type: Literal["GetRiskBudget"] = "GetRiskBudget"


# --- execution -------------------------------------------------------------------------


class GetOrder(Command):
    """One order by id."""

    SERVICE = "execution"
    VERB = "get_order"
    REPLY = OrderReply
    type: Literal["GetOrder"] = "GetOrder"
    order_id: UUID


class GetOrders(Command):
    """The account's orders."""

    SERVICE = "execution"
    VERB = "get_orders"
    REPLY = OrderListReply
    type: Literal["GetOrders"] = "GetOrders"
    open_only: bool = True


class CancelOrder(Command):
    """Cancel a working order; the reply shows it before the broker confirms."""

    SERVICE = "execution"
    VERB = "cancel_order"
    REPLY = OrderReply
    type: Literal["CancelOrder"] = "CancelOrder"
    order_id: UUID
    reason: CancelReason = CancelReason.USER_REQUESTED
    """Recorded on the OrderCancelled (the monitor cancels a target for STOP_LOSS...)."""


class PlaceExitOrder(Command):
    """Close one spread of a position with a GTC limit order (the monitor's exits).

    Execution records the decision as ``ExitOrderPlaced`` and places it; the same
    ``order_id`` sent twice places one order. With ``replaces_order_id`` the spread's
    working exit is cancelled first (reason from ``purpose``). Publishing
    ``ExitOrderPlaced`` directly has the same effect, without a reply.
    """

    SERVICE = "execution"
    VERB = "place_exit_order"
    REPLY = OrderReply
    type: Literal["PlaceExitOrder"] = "PlaceExitOrder"
    position_id: UUID
    spread_kind: SpreadKind
    order_id: UUID
    """Chosen by the caller, so a retried command places the order once."""
    purpose: OrderPurpose
    legs: tuple[OrderLeg, ...] = Field(min_length=1)
    """BUY_TO_CLOSE / SELL_TO_CLOSE legs only."""
    limit_price: Money
    """Signed per ratio unit: closing a credit spread is a debit (negative)."""
    replaces_order_id: UUID | None = None
    reason: str = Field(min_length=1)


class ReplaceOrderPrice(Command):
    """Re-price a working closing order; it lives on as ``replacement_order_id``."""

    SERVICE = "execution"
    VERB = "replace_order_price"
    REPLY = OrderReply
    type: Literal["ReplaceOrderPrice"] = "ReplaceOrderPrice"
    order_id: UUID
    replacement_order_id: UUID
    """Chosen by the caller, so a retried command re-prices once."""
    limit_price: Money
    """The new signed limit (negative = debit)."""


# --- positions -------------------------------------------------------------------------


class GetPosition(Command):
    """One position by id."""

    SERVICE = "position_monitor"
    VERB = "get_position"
    REPLY = PositionReply
    type: Literal["GetPosition"] = "GetPosition"
    position_id: UUID


class GetPositions(Command):
    """The account's positions."""

    SERVICE = "position_monitor"
    VERB = "get_positions"
    REPLY = PositionListReply
    type: Literal["GetPositions"] = "GetPositions"
    include_closed: bool = False


class ClosePosition(Command):
    """Close spreads of a position now (MANUAL_EXIT), replacing their profit targets."""

    SERVICE = "position_monitor"
    VERB = "close_position"
    REPLY = ClosePositionReply
    type: Literal["ClosePosition"] = "ClosePosition"
    position_id: UUID
    spreads: EnumSet[SpreadKind] = ()
    """The spreads to close; empty = every open spread."""


class SyncPositions(Command):
    """Re-read the account's positions from the broker now and reconcile (user request)."""

    SERVICE = "position_monitor"
    VERB = "sync_positions"
    REPLY = SyncPositionsReply
    type: Literal["SyncPositions"] = "SyncPositions"


# --- market data -----------------------------------------------------------------------


class GetQuotes(Command):
    """The latest quotes for some symbols."""

    SERVICE = "market_data"
    VERB = "get_quotes"
    REPLY = QuotesReply
    type: Literal["GetQuotes"] = "GetQuotes"
    symbols: tuple[MarketSymbol, ...] = Field(min_length=1, max_length=200)


class WatchSymbols(Command):
    """Stream quotes for ``symbols`` (options or underlyings) for ``lease_seconds``.

    A lease, so a caller that dies stops costing subscriptions; callers renew it.
    """

    SERVICE = "market_data"
    VERB = "watch_symbols"
    REPLY = WatchReply
    type: Literal["WatchSymbols"] = "WatchSymbols"
    symbols: tuple[MarketSymbol, ...] = Field(min_length=1, max_length=500)
    lease_seconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)


class GetChainSnapshot(Command):
    """Listed strikes near the money with their latest quotes, per expiration."""

    SERVICE = "market_data"
    VERB = "get_chain_snapshot"
    REPLY = ChainSnapshotReply
    type: Literal["GetChainSnapshot"] = "GetChainSnapshot"
    underlying: Underlying
    min_dte: int = Field(default=30, ge=0, le=1000)
    max_dte: int = Field(default=50, ge=0, le=1000)
    strike_range: PositiveMoney = Decimal(20)
    """Strikes within the underlying's mid +/- this are included."""
    wait_seconds: float = Field(default=2.0, ge=0, le=10)
    """How long to wait for quotes of newly watched strikes before answering."""

    @model_validator(mode="after")
    def _range(self) -> GetChainSnapshot:
        if self.min_dte > self.max_dte:
            raise ValueError("min_dte must not exceed max_dte")
        return self


class GetMarketCondition(Command):
    """The underlying's price, bands, stress, IV rank and risk-free rate now."""

    SERVICE = "market_data"
    VERB = "get_market_condition"
    REPLY = MarketConditionReply
    type: Literal["GetMarketCondition"] = "GetMarketCondition"
    underlying: Underlying


# --- audit -----------------------------------------------------------------------------


class GetEvents(Command):
    """The account's recorded events, filtered, in position order."""

    SERVICE = "audit"
    VERB = "get_events"
    REPLY = EventPageReply
    type: Literal["GetEvents"] = "GetEvents"
    types: tuple[str, ...] = ()
    """Event types to include; empty = all."""
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    after_position: int | None = Field(default=None, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)


class GetCausalChain(Command):
    """Every recorded event sharing one correlation id, in position order."""

    SERVICE = "audit"
    VERB = "get_causal_chain"
    REPLY = EventPageReply
    type: Literal["GetCausalChain"] = "GetCausalChain"
    chain_correlation_id: UUID
    """The correlation id to trace (the command's own ``correlation_id`` is its own)."""


class VerifyEventLog(Command):
    """Check the event log's hash chain."""

    SERVICE = "audit"
    VERB = "verify_event_log"
    REPLY = VerifyReply
    type: Literal["VerifyEventLog"] = "VerifyEventLog"
