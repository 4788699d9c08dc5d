"""Execution context: orders sent to the broker and their lifecycle.

Only limit orders exist. Prices follow the TastyTrade SDK convention: positive = credit
received, negative = debit paid, per unit of the leg ratio (leg quantities divided by
their greatest common divisor). Fill prices are per share and unsigned, as the broker
reports them; the leg's action gives the direction.

Our ``order_id`` names one order decision for its whole life; the broker's id can
change on a replace, which ends the old ``order_id`` (status REPLACED) and continues
with the replacement's.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from math import gcd
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from libs.contracts.base import (
    AwareDatetime,
    ContractModel,
    Contracts,
    Money,
    NonNegativeMoney,
    Ticker,
)
from libs.contracts.envelope import AccountEvent
from libs.contracts.errors import ErrorKind
from libs.contracts.strategy import SpreadKind
from libs.contracts.symbols import OccSymbol

#: The client tag sent as the broker's ``external-identifier``; it is how a retry after
#: a timeout finds an order the broker may already hold.
ClientTag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
#: The broker's order or fill identifier, as text.
BrokerId = Annotated[str, Field(min_length=1, max_length=64)]


class OrderAction(StrEnum):
    """What a leg does; closing actions can only reduce an existing position."""

    BUY_TO_OPEN = "BUY_TO_OPEN"
    SELL_TO_OPEN = "SELL_TO_OPEN"
    BUY_TO_CLOSE = "BUY_TO_CLOSE"
    SELL_TO_CLOSE = "SELL_TO_CLOSE"

    @property
    def is_opening(self) -> bool:
        """BUY_TO_OPEN or SELL_TO_OPEN."""
        return self in (OrderAction.BUY_TO_OPEN, OrderAction.SELL_TO_OPEN)

    @property
    def is_buy(self) -> bool:
        """BUY_TO_OPEN or BUY_TO_CLOSE."""
        return self in (OrderAction.BUY_TO_OPEN, OrderAction.BUY_TO_CLOSE)


class TimeInForce(StrEnum):
    """DAY for openings, GTC for exits (DOMAIN.md 5)."""

    DAY = "DAY"
    GTC = "GTC"


class OrderPurpose(StrEnum):
    """Why an order exists; every purpose but OPEN closes a spread."""

    OPEN = "OPEN"
    PROFIT_TARGET = "PROFIT_TARGET"
    STOP_LOSS = "STOP_LOSS"
    TIME_EXIT = "TIME_EXIT"
    MANUAL_EXIT = "MANUAL_EXIT"
    """A user's ClosePosition."""

    @property
    def is_exit(self) -> bool:
        """Every purpose but OPEN."""
        return self is not OrderPurpose.OPEN


class OrderStatus(StrEnum):
    """Lifecycle of one order decision."""

    SUBMITTED = "SUBMITTED"
    """Sent (or about to be sent) to the broker, not yet acknowledged."""
    WORKING = "WORKING"
    """Live at the broker."""
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    """A DAY order still open at the close."""
    REPLACED = "REPLACED"
    """Re-priced: the broker order continues under the replacement's order_id."""

    @property
    def is_terminal(self) -> bool:
        """No further event changes this order."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
    }
)


class CancelReason(StrEnum):
    """Why an order was cancelled."""

    USER_REQUESTED = "USER_REQUESTED"
    STOP_LOSS = "STOP_LOSS"
    """A profit target made way for the stop-loss exit."""
    TIME_EXIT = "TIME_EXIT"
    """A profit target made way for the 7-DTE exit."""
    MANUAL_EXIT = "MANUAL_EXIT"
    """A profit target made way for the user's ClosePosition."""
    BROKER = "BROKER"
    """Cancelled at the broker, not by us."""
    SYSTEM = "SYSTEM"


class OrderLeg(ContractModel):
    """One option of an order; ``quantity`` is its part of the leg ratio (2:2:1:1)."""

    symbol: OccSymbol
    action: OrderAction
    quantity: Contracts


def check_order_shape(
    purpose: OrderPurpose, legs: Sequence[OrderLeg], time_in_force: TimeInForce
) -> None:
    """Raise ValueError unless legs and time in force fit the purpose.

    Openings are DAY orders of opening legs; exits are GTC orders of closing legs only,
    so an exit can never open new legs (DOMAIN.md 5 and 6).
    """
    symbols = [leg.symbol for leg in legs]
    if len(set(symbols)) != len(symbols):
        raise ValueError("an order lists each symbol once")
    if purpose.is_exit:
        if any(leg.action.is_opening for leg in legs):
            raise ValueError(f"a {purpose} order may only use BUY_TO_CLOSE / SELL_TO_CLOSE legs")
        if time_in_force is not TimeInForce.GTC:
            raise ValueError(f"a {purpose} order is GTC")
    else:
        if not all(leg.action.is_opening for leg in legs):
            raise ValueError("an OPEN order may only use BUY_TO_OPEN / SELL_TO_OPEN legs")
        if time_in_force is not TimeInForce.DAY:
            raise ValueError("an OPEN order is DAY")


def ratio_unit(legs: Sequence[OrderLeg]) -> int:
    """The greatest common divisor of the leg quantities: the price is per this many."""
    unit = 0
    for leg in legs:
        unit = gcd(unit, leg.quantity)
    return unit


class LegFill(ContractModel):
    """One broker fill of one leg."""

    symbol: OccSymbol
    action: OrderAction
    quantity: Contracts
    fill_price: NonNegativeMoney
    """Per share, unsigned; ``action`` says whether it was paid or received."""
    broker_fill_id: BrokerId
    """The broker's fill id: consumers de-duplicate on it."""
    filled_at: AwareDatetime


def _unique_fill_ids(fills: Sequence[LegFill]) -> None:
    ids = [fill.broker_fill_id for fill in fills]
    if len(set(ids)) != len(ids):
        raise ValueError("broker_fill_id values must be unique")


class _FillReport(AccountEvent):
    """Shared shape of fill events: every fill so far, not just the newest."""

    CONTEXT: ClassVar[str] = "execution"
    order_id: UUID
    broker_order_id: BrokerId
    legs: tuple[LegFill, ...] = Field(min_length=1)
    """All fills of the order so far (cumulative, so one event is enough to rebuild)."""

    @model_validator(mode="after")
    def _unique(self) -> _FillReport:
        _unique_fill_ids(self.legs)
        return self

    def filled_quantity(self, symbol: str) -> int:
        """Contracts filled so far for ``symbol``."""
        return sum(fill.quantity for fill in self.legs if fill.symbol == symbol)

    def average_fill_price(self, symbol: str) -> Decimal | None:
        """Quantity-weighted fill price of ``symbol`` (per share), None if unfilled."""
        fills = [fill for fill in self.legs if fill.symbol == symbol]
        quantity = sum(fill.quantity for fill in fills)
        if not quantity:
            return None
        return sum((fill.fill_price * fill.quantity for fill in fills), Decimal(0)) / quantity


class OrderSubmitted(AccountEvent):
    """An order decision is being sent to the broker (published before the request)."""

    CONTEXT: ClassVar[str] = "execution"
    type: Literal["OrderSubmitted"] = "OrderSubmitted"
    order_id: UUID
    client_tag: ClientTag
    """Sent as the broker's external identifier; looked up after a timeout."""
    purpose: OrderPurpose
    underlying: Ticker
    legs: tuple[OrderLeg, ...] = Field(min_length=1)
    limit_price: Money
    """Signed: + credit received, - debit paid; per unit of the leg ratio."""
    time_in_force: TimeInForce
    suggestion_id: UUID | None = None
    """For OPEN orders: the approved suggestion."""
    reservation_id: UUID | None = None
    """For OPEN orders: the risk reservation that allowed the order."""
    position_id: UUID | None = None
    """For exits: the position being closed."""
    spread_kind: SpreadKind | None = None
    """For exits: the spread being closed."""
    replaces_order_id: UUID | None = None
    """The working order this one re-prices, if any."""

    @model_validator(mode="after")
    def _consistent(self) -> OrderSubmitted:
        check_order_shape(self.purpose, self.legs, self.time_in_force)
        if self.purpose.is_exit:
            if self.position_id is None or self.spread_kind is None:
                raise ValueError("an exit order names position_id and spread_kind")
        elif self.suggestion_id is None or self.reservation_id is None:
            raise ValueError("an OPEN order names suggestion_id and reservation_id")
        return self

    @property
    def ratio_unit(self) -> int:
        """GCD of the leg quantities (1 for 2:2:1:1, 2 for 2:2)."""
        return ratio_unit(self.legs)


class OrderAccepted(AccountEvent):
    """The broker holds the order live."""

    CONTEXT: ClassVar[str] = "execution"
    type: Literal["OrderAccepted"] = "OrderAccepted"
    order_id: UUID
    broker_order_id: BrokerId


class OrderPartiallyFilled(_FillReport):
    """Some, not all, contracts of the order are filled."""

    type: Literal["OrderPartiallyFilled"] = "OrderPartiallyFilled"


class OrderFilled(_FillReport):
    """Every contract of the order is filled."""

    type: Literal["OrderFilled"] = "OrderFilled"


class OrderRejected(AccountEvent):
    """The order failed: refused by the broker, or never accepted (retries exhausted)."""

    CONTEXT: ClassVar[str] = "execution"
    type: Literal["OrderRejected"] = "OrderRejected"
    order_id: UUID
    broker_order_id: BrokerId | None = None
    kind: ErrorKind
    """ORDER_REJECTED for a broker refusal; otherwise what stopped it (MARKET_CLOSED...)."""
    reason: str = Field(min_length=1)
    """The broker's reason, verbatim when it gave one."""


class OrderCancelled(AccountEvent):
    """The order was cancelled (any fills before stay valid)."""

    CONTEXT: ClassVar[str] = "execution"
    type: Literal["OrderCancelled"] = "OrderCancelled"
    order_id: UUID
    broker_order_id: BrokerId | None = None
    reason: CancelReason
    message: str | None = None


class OrderExpired(AccountEvent):
    """A DAY order ended with the session without filling completely."""

    CONTEXT: ClassVar[str] = "execution"
    type: Literal["OrderExpired"] = "OrderExpired"
    order_id: UUID
    broker_order_id: BrokerId | None = None


class OrderReplaced(AccountEvent):
    """The broker re-priced ``order_id``; it lives on as ``replacement_order_id``."""

    CONTEXT: ClassVar[str] = "execution"
    type: Literal["OrderReplaced"] = "OrderReplaced"
    order_id: UUID
    replacement_order_id: UUID
    broker_order_id: BrokerId | None = None
    """The replaced broker order."""


class OrderView(ContractModel):
    """An order as execution currently knows it (query answer)."""

    order_id: UUID
    client_tag: ClientTag
    status: OrderStatus
    purpose: OrderPurpose
    underlying: Ticker
    legs: tuple[OrderLeg, ...] = Field(min_length=1)
    limit_price: Money
    time_in_force: TimeInForce
    broker_order_id: BrokerId | None = None
    suggestion_id: UUID | None = None
    position_id: UUID | None = None
    spread_kind: SpreadKind | None = None
    fills: tuple[LegFill, ...] = ()
    submitted_at: AwareDatetime
    updated_at: AwareDatetime
    reason: str | None = None
    """Rejection or cancellation reason, when it ended that way."""
    replaced_by_order_id: UUID | None = None
