"""What the adapter returns and accepts: frozen values built from contract types.

These are broker reports (the broker's view, the source of truth), not events; the
services turn them into events. Money is Decimal; order prices are signed (+ credit,
- debit) per unit of the leg ratio, as in ``libs.contracts.execution``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from libs.contracts.base import (
    AccountId,
    AwareDatetime,
    ContractModel,
    Money,
    Percent,
    Ticker,
)
from libs.contracts.errors import InsufficientBuyingPower
from libs.contracts.execution import (
    BrokerId,
    LegFill,
    OrderLeg,
    OrderStatus,
)
from libs.contracts.market import Quote
from libs.contracts.symbols import OccSymbol


class BrokerCredentials(BaseModel):
    """An OAuth client secret and refresh token; both hidden from repr, str and dumps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_secret: SecretStr = Field(min_length=1)
    refresh_token: SecretStr = Field(min_length=1)


class BrokerAccount(ContractModel):
    """An account the credentials can trade."""

    account_number: AccountId
    nickname: str | None = None
    account_type: str
    margin_or_cash: str
    is_closed: bool = False


class Balances(ContractModel):
    """The broker's balances of one account (USD)."""

    account_number: AccountId
    derivative_buying_power: Money
    """Buying power for options: the base of tradeable capital (DOMAIN.md 4)."""
    equity_buying_power: Money
    net_liquidating_value: Money
    cash_balance: Money
    maintenance_requirement: Money
    updated_at: AwareDatetime


class BrokerPosition(ContractModel):
    """One position the broker holds; ``quantity`` is signed (short < 0)."""

    account_number: AccountId
    symbol: str
    """The OCC symbol for options, the ticker for shares."""
    underlying: str
    instrument_type: str
    quantity: int
    average_open_price: Money
    close_price: Money
    mark: Money | None = None
    multiplier: Decimal
    expires_at: AwareDatetime | None = None

    @property
    def option_symbol(self) -> OccSymbol | None:
        """The symbol as an `OccSymbol`, or None for a non-option."""
        return OccSymbol(self.symbol) if self.instrument_type == "Equity Option" else None


class ChainStrike(ContractModel):
    """One strike of an expiration: its call and put."""

    strike: Money
    call: OccSymbol
    put: OccSymbol
    call_streamer_symbol: str
    put_streamer_symbol: str


class ChainExpiration(ContractModel):
    """One expiration of a nested chain, strikes ascending."""

    expiration_date: date
    days_to_expiration: int
    expiration_type: str
    settlement_type: str
    strikes: tuple[ChainStrike, ...]

    def strike_prices(self) -> tuple[Decimal, ...]:
        """The listed strikes, ascending."""
        return tuple(s.strike for s in self.strikes)


class OptionChain(ContractModel):
    """The standard option chain of an underlying, expirations ascending."""

    underlying: Ticker
    root_symbol: str
    shares_per_contract: int
    tick_size: Money | None
    expirations: tuple[ChainExpiration, ...]


class MarketMetrics(ContractModel):
    """Volatility metrics of a symbol; IV rank and percentile are percents (0-100)."""

    symbol: str
    iv_rank: Percent | None = None
    iv_percentile: Percent | None = None
    implied_volatility: Decimal | None = None
    """The implied volatility index as a fraction (0.18 = 18 %)."""
    updated_at: AwareDatetime


class RateSource(StrEnum):
    """Where a risk-free rate came from."""

    BROKER = "BROKER"
    FALLBACK = "FALLBACK"


class RiskFreeRate(ContractModel):
    """An annual risk-free rate as a fraction (0.045 = 4.5 %)."""

    rate: Decimal = Field(ge=0, le=1)
    source: RateSource


class BuyingPowerEffect(ContractModel):
    """The broker's estimate of an order's effect; signed (a debit is negative)."""

    change_in_buying_power: Money
    current_buying_power: Money
    new_buying_power: Money
    change_in_margin_requirement: Money
    isolated_order_margin_requirement: Money
    is_spread: bool
    impact: Money
    effect: str


class DryRunResult(ContractModel):
    """The answer to a dry run: the order as the broker would take it, and its effects."""

    buying_power_effect: BuyingPowerEffect
    total_fees: Money | None = None
    """Signed like the SDK reports it (a debit is negative)."""
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def sufficient(self) -> bool:
        """The account can afford the order: no broker error, buying power stays >= 0."""
        return not self.errors and self.buying_power_effect.new_buying_power >= 0

    def raise_if_insufficient(self) -> None:
        """Raise INSUFFICIENT_BUYING_POWER unless `sufficient`."""
        if not self.sufficient:
            effect = self.buying_power_effect
            reason = "; ".join(self.errors) or (
                f"new buying power would be {effect.new_buying_power} "
                f"(change {effect.change_in_buying_power})"
            )
            raise InsufficientBuyingPower(
                f"the broker's dry run refuses the order: {reason}",
                details={"new_buying_power": str(effect.new_buying_power)},
            )


class BrokerOrder(ContractModel):
    """An order as the broker reports it, mapped to our lifecycle."""

    broker_order_id: BrokerId
    account_number: AccountId
    status: OrderStatus
    broker_status: str
    """The broker's own status word (``Live``, ``Cancel Requested``...)."""
    underlying: str
    legs: tuple[OrderLeg, ...]
    limit_price: Money | None
    """Signed per ratio unit; None for non-limit orders placed outside Senex."""
    time_in_force: str
    client_tag: str | None = None
    fills: tuple[LegFill, ...] = ()
    reject_reason: str | None = None
    replaces_broker_order_id: BrokerId | None = None
    replaced_by_broker_order_id: BrokerId | None = None
    updated_at: datetime
    received_at: datetime | None = None

    def filled_quantity(self, symbol: str) -> int:
        """Contracts of ``symbol`` filled so far."""
        return sum(f.quantity for f in self.fills if f.symbol == symbol)

    @property
    def is_live(self) -> bool:
        """Still able to fill."""
        return self.status in (
            OrderStatus.SUBMITTED,
            OrderStatus.WORKING,
            OrderStatus.PARTIALLY_FILLED,
        )


# --- streaming (DXLink market data, account notifications) ----------------------------


class StreamQuote(ContractModel):
    """A best bid/ask from the market-data stream; ``symbol`` is a ticker or an OCC symbol."""

    symbol: str
    bid: Money
    ask: Money
    bid_size: int | None = None
    ask_size: int | None = None
    quoted_at: AwareDatetime
    """Time of the quote at its source (the receive time when the source gives none)."""

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2, exact."""
        return (self.bid + self.ask) / 2

    def to_contract(self) -> Quote:
        """The contracts' `Quote`, as decisions embed it and QuoteReceived carries it."""
        return Quote(symbol=self.symbol, bid=self.bid, ask=self.ask, quoted_at=self.quoted_at)


class StreamGreeks(ContractModel):
    """The broker's Greeks of an option (per share) from the market-data stream."""

    symbol: str
    """The OCC symbol (or the ticker, for whatever the broker sends for an underlying)."""
    price: Money
    volatility: Decimal
    """Implied volatility as a fraction (0.18 = 18 %)."""
    delta: Decimal
    gamma: Decimal
    theta: Decimal
    vega: Decimal
    rho: Decimal
    computed_at: AwareDatetime


class DailyCandle(ContractModel):
    """One regular-hours daily bar of an underlying."""

    symbol: str
    day: date
    """The session date (New York)."""
    open: Money
    high: Money
    low: Money
    close: Money
    volume: Decimal | None = None


class StreamState(StrEnum):
    """Where a stream stands, for health checks."""

    CONNECTING = "CONNECTING"
    """Started, first connection not yet made."""
    CONNECTED = "CONNECTED"
    RECONNECTING = "RECONNECTING"
    """The socket dropped (or could not open); waiting out the backoff or reconnecting."""
    STOPPED = "STOPPED"


class StreamHealth(ContractModel):
    """A stream's state and its last failure (error kind and message, never a token)."""

    name: str
    state: StreamState
    reconnects: int = Field(ge=0)
    """Connections lost or refused since the stream started."""
    last_error_kind: str | None = None
    last_error: str | None = None
    subscriptions: int = Field(default=0, ge=0)
    """Broker-side subscriptions the stream holds (each once, whatever the consumers)."""
