"""Positions context: open Tridents, their exits, marks and P&L, and attention flags.

Each spread of a position is bookkept on its own: its entry credit comes from the
opening fill and it has its own profit target, stop loss and closing order.
Credits and closing costs are per share; P&L and max risk are dollars.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from libs.contracts.base import (
    AwareDatetime,
    ContractModel,
    Contracts,
    Money,
    NonNegativeMoney,
    PositiveMoney,
    Ratio,
    Ticker,
)
from libs.contracts.envelope import AccountEvent
from libs.contracts.execution import OrderLeg, OrderPurpose, TimeInForce, check_order_shape
from libs.contracts.market import Greeks, Quote
from libs.contracts.strategy import SpreadKind, check_spread_geometry
from libs.contracts.symbols import OccSymbol

_CONTEXT = "positions"


class PositionSpread(ContractModel):
    """One credit spread of a position as opened."""

    kind: SpreadKind
    short_symbol: OccSymbol
    long_symbol: OccSymbol
    quantity: Contracts = 1
    entry_credit: Money
    """Short fill price - long fill price at the opening fill (per share)."""
    profit_target: Ratio
    """Fraction of the entry credit to keep: 0.40, 0.60 or 0.50."""

    @model_validator(mode="after")
    def _geometry(self) -> PositionSpread:
        check_spread_geometry(self.kind, self.short_symbol, self.long_symbol)
        return self

    @property
    def width(self) -> Decimal:
        """Distance between the strikes."""
        return abs(self.short_symbol.strike - self.long_symbol.strike)

    @property
    def max_loss(self) -> Decimal:
        """Width - entry credit (per share)."""
        return self.width - self.entry_credit


class PositionOpened(AccountEvent):
    """An opening order filled completely: an app-managed position exists."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["PositionOpened"] = "PositionOpened"
    position_id: UUID
    suggestion_id: UUID
    opening_order_id: UUID
    underlying: Ticker
    expiration: date
    width: PositiveMoney
    spreads: tuple[PositionSpread, ...] = Field(min_length=2, max_length=3)
    """Put spread 1, put spread 2 and, when traded, the call spread, in that order."""
    total_entry_credit: Money
    """Sum of entry credit x quantity over the spreads (per share)."""
    max_risk: NonNegativeMoney
    """Dollars at risk, counted against the risk budget."""

    @model_validator(mode="after")
    def _consistent(self) -> PositionOpened:
        kinds = tuple(spread.kind for spread in self.spreads)
        if kinds[:2] != (SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2) or kinds[2:] not in (
            (),
            (SpreadKind.CALL_SPREAD,),
        ):
            raise ValueError("spreads must be PUT_SPREAD_1, PUT_SPREAD_2[, CALL_SPREAD]")
        for spread in self.spreads:
            if spread.short_symbol.expiration != self.expiration or spread.width != self.width:
                raise ValueError(f"{spread.kind} does not match expiration and width")
        if self.total_entry_credit != sum(s.entry_credit * s.quantity for s in self.spreads):
            raise ValueError("total_entry_credit must be the sum over the spreads")
        return self

    def spread(self, kind: SpreadKind) -> PositionSpread | None:
        """The spread of ``kind``, or None when it was not traded."""
        return next((s for s in self.spreads if s.kind is kind), None)


class ExitOrderPlaced(AccountEvent):
    """The monitor decided to close one spread with this order; execution places it."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["ExitOrderPlaced"] = "ExitOrderPlaced"
    position_id: UUID
    spread_kind: SpreadKind
    order_id: UUID
    """Chosen here so the order is placed once however often this event is delivered."""
    purpose: OrderPurpose
    legs: tuple[OrderLeg, ...] = Field(min_length=1)
    limit_price: Money
    """Signed (closing a credit spread is a debit: negative)."""
    time_in_force: TimeInForce = TimeInForce.GTC
    replaces_order_id: UUID | None = None
    """The spread's working exit this one supersedes (profit target -> stop loss...)."""
    reason: str = Field(min_length=1)
    """Why now, e.g. "closing cost 2.10 >= 2 x entry credit 1.05"."""

    @model_validator(mode="after")
    def _consistent(self) -> ExitOrderPlaced:
        if not self.purpose.is_exit:
            raise ValueError("an exit order's purpose is not OPEN")
        check_order_shape(self.purpose, self.legs, self.time_in_force)
        return self


class SpreadMark(ContractModel):
    """A spread valued at the marks of a PositionUpdated."""

    kind: SpreadKind
    closing_cost_mid: Money
    """Short mid - long mid: the debit to close at mid (per share)."""
    closing_cost_natural: Money
    """Short ask - long bid: the debit to close at the natural price (per share)."""
    unrealized_pnl: Money
    """(Entry credit - closing cost at mid) x 100 x quantity."""


class PositionUpdated(AccountEvent):
    """Periodic valuation of an open position, with the marks it used."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["PositionUpdated"] = "PositionUpdated"
    position_id: UUID
    marks: tuple[Quote, ...] = Field(min_length=1)
    """The quotes every figure below was computed from (replay reproduces P&L)."""
    spreads: tuple[SpreadMark, ...] = Field(min_length=1)
    """The spreads still open."""
    unrealized_pnl: Money
    """Sum over the open spreads (dollars)."""
    dte: int = Field(ge=0)
    position_greeks: Greeks | None = None


class CloseReason(StrEnum):
    """Why a spread is no longer open."""

    PROFIT_TARGET = "PROFIT_TARGET"
    STOP_LOSS = "STOP_LOSS"
    TIME_EXIT = "TIME_EXIT"
    MANUAL_EXIT = "MANUAL_EXIT"
    EXPIRED = "EXPIRED"
    """Reached expiration without a closing fill."""
    EXTERNAL = "EXTERNAL"
    """Closed at the broker outside the system."""


class SpreadClosed(AccountEvent):
    """One spread of a position is closed."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["SpreadClosed"] = "SpreadClosed"
    position_id: UUID
    spread_kind: SpreadKind
    reason: CloseReason
    closing_order_id: UUID | None = None
    """The filled exit order; null when closed without one (expired, external)."""
    exit_debit: Money | None = None
    """Debit paid to close, per share, positive: short leg's buy-back price - long leg's
    sale price (the fills of the closing order), when known."""
    realized_pnl: Money
    """(Entry credit - exit debit) x 100 x quantity (dollars)."""


class PositionClosed(AccountEvent):
    """Every spread of the position is closed."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["PositionClosed"] = "PositionClosed"
    position_id: UUID
    realized_pnl: Money
    """Sum of the spreads' realized P&L (dollars)."""


class AttentionReason(StrEnum):
    """Why a position needs a human (DOMAIN.md 7)."""

    PARTIAL_FILL = "PARTIAL_FILL"
    """The opening order filled partly; no automatic leg-in."""
    GONE_AT_BROKER = "GONE_AT_BROKER"
    """Open locally, absent at the broker; marked inactive."""
    ORDER_FAILED = "ORDER_FAILED"
    """An exit order was rejected or could not be placed."""
    BROKER_MISMATCH = "BROKER_MISMATCH"
    """The broker holds different quantities than the local projection."""


#: A signed option quantity: positive long, negative short.
SignedContracts = Annotated[int, Field(ge=-10_000, le=10_000)]


class HeldLeg(ContractModel):
    """An option the broker says the account holds."""

    symbol: OccSymbol
    quantity: SignedContracts
    """Positive long, negative short."""


class PositionNeedsAttention(AccountEvent):
    """A position is flagged for a human; notified by e-mail, banner and flag."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["PositionNeedsAttention"] = "PositionNeedsAttention"
    position_id: UUID
    underlying: Ticker
    reason: AttentionReason
    message: str = Field(min_length=1)
    order_id: UUID | None = None
    """The order involved (partial opening, failed exit)."""
    app_managed: bool
    """Whether the system still manages exits; false for a partly filled opening."""
    active: bool = True
    """False once the position is gone at the broker."""
    held_legs: tuple[HeldLeg, ...] = ()
    """What the broker holds for the position's symbols, when known."""


class PositionAttentionCleared(AccountEvent):
    """The flag is lifted (a partly filled opening completed)."""

    CONTEXT: ClassVar[str] = _CONTEXT
    type: Literal["PositionAttentionCleared"] = "PositionAttentionCleared"
    position_id: UUID
    message: str = Field(min_length=1)


class PositionStatus(StrEnum):
    """Whether any spread is still open."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"


class SpreadView(ContractModel):
    """A spread of a position as the monitor currently sees it."""

    spread: PositionSpread
    open: bool
    exit_order_id: UUID | None = None
    """The working exit order, if any."""
    exit_purpose: OrderPurpose | None = None
    close_reason: CloseReason | None = None
    realized_pnl: Money | None = None
    closing_cost_mid: Money | None = None
    unrealized_pnl: Money | None = None


class PositionView(ContractModel):
    """A position as the monitor currently sees it (query answer)."""

    position_id: UUID
    underlying: Ticker
    expiration: date | None
    """Null only for a flagged position that never fully opened."""
    width: PositiveMoney | None
    status: PositionStatus
    app_managed: bool
    active: bool
    needs_attention: bool
    attention_reason: AttentionReason | None = None
    spreads: tuple[SpreadView, ...] = ()
    held_legs: tuple[HeldLeg, ...] = ()
    """For unmanaged positions: what the broker holds."""
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    max_risk: NonNegativeMoney | None = None
    realized_pnl: Money = Decimal(0)
    unrealized_pnl: Money | None = None
    dte: int | None = Field(default=None, ge=0)
