"""SDK models <-> adapter values and contract types; pure functions, no I/O.

Sign convention at the boundary is the SDK's own (``set_sign_for``): a number whose
``-effect`` is ``Debit`` arrives negative, so order prices and buying-power effects
pass through signed; the SDK serialises a negative price as ``abs(price)`` plus
``price-effect: Debit`` on the way out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from tastytrade.account import Account, AccountBalance, CurrentPosition
from tastytrade.dxfeed import Candle as SdkCandle
from tastytrade.dxfeed import Greeks as SdkGreeks
from tastytrade.dxfeed import Quote as SdkQuote
from tastytrade.instruments import NestedOptionChain
from tastytrade.metrics import MarketMetricInfo
from tastytrade.order import BuyingPowerEffect as SdkBuyingPowerEffect
from tastytrade.order import (
    FillInfo,
    InstrumentType,
    Leg,
    LimitOrder,
    PlacedOrder,
    PlacedOrderResponse,
    UnplacedOrder,
)
from tastytrade.order import OrderAction as SdkAction
from tastytrade.order import OrderStatus as SdkStatus
from tastytrade.order import OrderTimeInForce as SdkTimeInForce

from libs.broker.models import (
    Balances,
    BrokerAccount,
    BrokerOrder,
    BrokerPosition,
    BuyingPowerEffect,
    ChainExpiration,
    ChainStrike,
    DailyCandle,
    DryRunResult,
    MarketMetrics,
    OptionChain,
    StreamGreeks,
    StreamQuote,
)
from libs.contracts.errors import ValidationFailed
from libs.contracts.execution import LegFill, OrderAction, OrderLeg, OrderStatus, TimeInForce
from libs.contracts.symbols import InvalidOccSymbol, OccSymbol
from libs.domain.money import TICK, is_on_tick
from libs.domain.orders import OrderRequest

ACTION_TO_SDK: dict[OrderAction, SdkAction] = {
    OrderAction.BUY_TO_OPEN: SdkAction.BUY_TO_OPEN,
    OrderAction.SELL_TO_OPEN: SdkAction.SELL_TO_OPEN,
    OrderAction.BUY_TO_CLOSE: SdkAction.BUY_TO_CLOSE,
    OrderAction.SELL_TO_CLOSE: SdkAction.SELL_TO_CLOSE,
}
ACTION_FROM_SDK: dict[SdkAction, OrderAction] = {v: k for k, v in ACTION_TO_SDK.items()}

TIF_TO_SDK: dict[TimeInForce, SdkTimeInForce] = {
    TimeInForce.DAY: SdkTimeInForce.DAY,
    TimeInForce.GTC: SdkTimeInForce.GTC,
}

#: Broker statuses before the order is working at the exchange.
_PENDING = frozenset({SdkStatus.RECEIVED, SdkStatus.ROUTED, SdkStatus.IN_FLIGHT})
#: Broker statuses of an order that can still fill (a cancel or replace is only requested).
_WORKING = frozenset(
    {
        SdkStatus.LIVE,
        SdkStatus.CANCEL_REQUESTED,
        SdkStatus.REPLACE_REQUESTED,
        SdkStatus.CONTINGENT,
    }
)


class UnmappableOrder(ValueError):
    """A broker order Senex cannot represent (non-option legs, fractional quantities)."""


def _aware(value: datetime) -> datetime:
    # The SDK parses epoch numbers as naive UTC; the broker's ISO strings carry a zone.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _whole(value: Decimal | int | None, what: str) -> int:
    if value is None:
        raise UnmappableOrder(f"{what} has no quantity")
    number = Decimal(value)
    if number != number.to_integral_value():
        raise UnmappableOrder(f"{what} quantity {value} is not whole")
    return int(number)


# --- accounts, balances, positions ---------------------------------------------------


def account_from_sdk(account: Account) -> BrokerAccount:
    """An SDK account as a `BrokerAccount`."""
    return BrokerAccount(
        account_number=account.account_number,
        nickname=account.nickname or None,
        account_type=account.account_type_name,
        margin_or_cash=account.margin_or_cash,
        is_closed=account.is_closed,
    )


def balances_from_sdk(balance: AccountBalance) -> Balances:
    """The balance figures the services use."""
    return Balances(
        account_number=balance.account_number,
        derivative_buying_power=balance.derivative_buying_power,
        equity_buying_power=balance.equity_buying_power,
        net_liquidating_value=balance.net_liquidating_value,
        cash_balance=balance.cash_balance,
        maintenance_requirement=balance.maintenance_requirement,
        updated_at=_aware(balance.updated_at),
    )


def position_from_sdk(position: CurrentPosition) -> BrokerPosition:
    """A position with a signed whole quantity; option symbols are checked as OCC."""
    quantity = _whole(position.quantity, f"position {position.symbol}")
    if position.quantity_direction == "Short":
        quantity = -abs(quantity)
    if position.instrument_type == InstrumentType.EQUITY_OPTION:
        OccSymbol(position.symbol)  # refuse a malformed option symbol here, not later
    return BrokerPosition(
        account_number=position.account_number,
        symbol=position.symbol,
        underlying=position.underlying_symbol,
        instrument_type=position.instrument_type.value,
        quantity=quantity,
        average_open_price=position.average_open_price,
        close_price=position.close_price,
        mark=position.mark if position.mark is not None else position.mark_price,
        multiplier=position.multiplier,
        expires_at=_aware(position.expires_at) if position.expires_at else None,
    )


# --- chains and metrics --------------------------------------------------------------


def chain_from_sdk(chains: Iterable[NestedOptionChain], underlying: str) -> OptionChain:
    """The standard chain of ``underlying``; expirations and strikes ascending."""
    candidates = [c for c in chains if c.underlying_symbol == underlying] or list(chains)
    standard = [c for c in candidates if c.option_chain_type == "Standard"] or candidates
    if not standard:
        raise ValueError(f"the broker lists no option chain for {underlying}")
    chain = standard[0]
    expirations = tuple(
        ChainExpiration(
            expiration_date=exp.expiration_date,
            days_to_expiration=exp.days_to_expiration,
            expiration_type=exp.expiration_type,
            settlement_type=exp.settlement_type,
            strikes=tuple(
                ChainStrike(
                    strike=s.strike_price,
                    call=OccSymbol(s.call),
                    put=OccSymbol(s.put),
                    call_streamer_symbol=s.call_streamer_symbol,
                    put_streamer_symbol=s.put_streamer_symbol,
                )
                for s in sorted(exp.strikes, key=lambda s: s.strike_price)
            ),
        )
        for exp in sorted(chain.expirations, key=lambda e: e.expiration_date)
    )
    return OptionChain(
        underlying=underlying,
        root_symbol=chain.root_symbol,
        shares_per_contract=chain.shares_per_contract,
        tick_size=min((t.value for t in chain.tick_sizes), default=None),
        expirations=expirations,
    )


def percent_from_broker(value: str | Decimal | None) -> Decimal | None:
    """A rank or percentile as a percent (0-100).

    The broker reports them as fractions (``"0.283"`` = 28.3 %); a value above 1 is
    taken as already in percent. Unparseable or negative values are dropped.
    """
    if value is None or value == "":
        return None
    try:
        number = Decimal(value)
    except ArithmeticError:
        return None
    if not number.is_finite() or number < 0:
        return None
    percent = number * 100 if number <= 1 else number
    return min(percent, Decimal(100))


def metrics_from_sdk(info: MarketMetricInfo) -> MarketMetrics:
    """IV rank (preferring the broker's headline rank), percentile and IV index."""
    rank = percent_from_broker(info.implied_volatility_index_rank)
    if rank is None:
        rank = percent_from_broker(info.tw_implied_volatility_index_rank)
    return MarketMetrics(
        symbol=info.symbol,
        iv_rank=rank,
        iv_percentile=percent_from_broker(info.implied_volatility_percentile),
        implied_volatility=info.implied_volatility_index,
        updated_at=_aware(info.updated_at),
    )


# --- orders ---------------------------------------------------------------------------


def check_limit_price(price: Decimal) -> None:
    """Refuse a zero price or one finer than the tick: the adapter never rounds a decision."""
    if price == 0:
        raise ValidationFailed("a limit price cannot be zero", field="limit_price")
    if not is_on_tick(price):
        raise ValidationFailed(
            f"limit price {price} is not a multiple of the {TICK} tick",
            field="limit_price",
        )


def order_to_sdk(request: OrderRequest) -> LimitOrder:
    """The SDK limit order for ``request`` (price signed: the SDK splits out the effect)."""
    check_limit_price(request.limit_price)
    return LimitOrder(
        time_in_force=TIF_TO_SDK[request.time_in_force],
        price=request.limit_price,
        external_identifier=request.client_tag,
        legs=[
            Leg(
                instrument_type=InstrumentType.EQUITY_OPTION,
                symbol=str(leg.symbol),
                action=ACTION_TO_SDK[leg.action],
                quantity=leg.quantity,
            )
            for leg in request.legs
        ],
    )


def status_from_sdk(order: UnplacedOrder, *, has_fills: bool) -> OrderStatus:
    """Our lifecycle status for the broker's status word."""
    status = order.status
    if status in _PENDING:
        return OrderStatus.SUBMITTED
    if status in _WORKING:
        return OrderStatus.PARTIALLY_FILLED if has_fills else OrderStatus.WORKING
    if status is SdkStatus.FILLED:
        return OrderStatus.FILLED
    if status is SdkStatus.REJECTED:
        return OrderStatus.REJECTED
    if status is SdkStatus.EXPIRED:
        return OrderStatus.EXPIRED
    if status is SdkStatus.CANCELLED and order.replacing_order_id is not None:
        return OrderStatus.REPLACED
    # Cancelled, Removed, Partially Removed: ended without filling completely.
    return OrderStatus.CANCELLED


def _fill(leg: Leg, action: OrderAction, fill: FillInfo) -> LegFill:
    return LegFill(
        symbol=OccSymbol(leg.symbol),
        action=action,
        quantity=_whole(fill.quantity, f"fill {fill.fill_id}"),
        fill_price=abs(fill.fill_price),
        broker_fill_id=fill.fill_id,
        filled_at=_aware(fill.filled_at),
    )


def order_from_sdk(order: PlacedOrder) -> BrokerOrder:
    """A broker order in our terms; raises `UnmappableOrder` for non-option orders."""
    legs: list[OrderLeg] = []
    fills: list[LegFill] = []
    for leg in order.legs:
        if leg.instrument_type != InstrumentType.EQUITY_OPTION:
            raise UnmappableOrder(f"order {order.id} has a {leg.instrument_type} leg")
        action = ACTION_FROM_SDK.get(leg.action)
        if action is None:
            raise UnmappableOrder(f"order {order.id} uses action {leg.action}")
        try:
            symbol = OccSymbol(leg.symbol)
        except InvalidOccSymbol as exc:
            raise UnmappableOrder(str(exc)) from None
        legs.append(
            OrderLeg(symbol=symbol, action=action, quantity=_whole(leg.quantity, leg.symbol))
        )
        fills.extend(_fill(leg, action, f) for f in leg.fills or ())
    return BrokerOrder(
        broker_order_id=str(order.id),
        account_number=order.account_number,
        status=status_from_sdk(order, has_fills=bool(fills)),
        broker_status=order.status.value,
        underlying=order.underlying_symbol,
        legs=tuple(legs),
        limit_price=order.price,
        time_in_force=order.time_in_force.value,
        client_tag=order.external_identifier,
        fills=tuple(fills),
        reject_reason=order.reject_reason,
        replaces_broker_order_id=_id(order.replaces_order_id),
        replaced_by_broker_order_id=_id(order.replacing_order_id),
        updated_at=_aware(order.updated_at),
        received_at=_aware(order.received_at) if order.received_at else None,
    )


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


def buying_power_from_sdk(effect: SdkBuyingPowerEffect) -> BuyingPowerEffect:
    """The signed buying-power effect."""
    return BuyingPowerEffect(
        change_in_buying_power=effect.change_in_buying_power,
        current_buying_power=effect.current_buying_power,
        new_buying_power=effect.new_buying_power,
        change_in_margin_requirement=effect.change_in_margin_requirement,
        isolated_order_margin_requirement=effect.isolated_order_margin_requirement,
        is_spread=effect.is_spread,
        impact=effect.impact,
        effect=effect.effect.value,
    )


def dry_run_from_sdk(response: PlacedOrderResponse[UnplacedOrder]) -> DryRunResult:
    """A dry run's effects, warnings and errors."""
    fees = response.fee_calculation
    return DryRunResult(
        buying_power_effect=buying_power_from_sdk(response.buying_power_effect),
        total_fees=fees.total_fees if fees is not None else None,
        warnings=tuple(str(m) for m in response.warnings or ()),
        errors=tuple(str(m) for m in response.errors or ()),
    )


# --- streaming (DXLink) ---------------------------------------------------------------

_NEW_YORK = ZoneInfo("America/New_York")
#: The daily regular-hours candle the streams subscribe to (``QQQ{=1d,tho=true}``).
DAILY_INTERVAL = "1d"


def streamer_symbol(symbol: str) -> str:
    """The DXLink symbol of a ticker (itself) or an OCC option symbol (``.QQQ251219P592``)."""
    try:
        return OccSymbol(symbol).streamer_symbol
    except InvalidOccSymbol:
        return symbol


def candle_ticker(event_symbol: str) -> str:
    """The ticker of a candle symbol: ``QQQ{=1d,tho=true}`` -> ``QQQ``."""
    return event_symbol.split("{", 1)[0]


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _size(value: Decimal | None) -> int | None:
    return None if value is None or not value.is_finite() or value < 0 else int(value)


def quote_from_sdk(event: SdkQuote, symbol: str, received_at: datetime) -> StreamQuote:
    """A DXLink quote for ``symbol`` (our name of ``event.event_symbol``).

    ``quoted_at`` is the latest bid/ask/event time the source gives, else ``received_at``.
    """
    source_ms = max(event.bid_time, event.ask_time, event.event_time)
    return StreamQuote(
        symbol=symbol,
        bid=event.bid_price,
        ask=event.ask_price,
        bid_size=_size(event.bid_size),
        ask_size=_size(event.ask_size),
        quoted_at=_from_ms(source_ms) if source_ms > 0 else _aware(received_at),
    )


def greeks_from_sdk(event: SdkGreeks, symbol: str, received_at: datetime) -> StreamGreeks:
    """DXLink Greeks for ``symbol``; ``computed_at`` falls back to ``received_at``."""
    source_ms = max(event.time, event.event_time)
    return StreamGreeks(
        symbol=symbol,
        price=event.price,
        volatility=event.volatility,
        delta=event.delta,
        gamma=event.gamma,
        theta=event.theta,
        vega=event.vega,
        rho=event.rho,
        computed_at=_from_ms(source_ms) if source_ms > 0 else _aware(received_at),
    )


def candle_day(time_ms: int) -> date:
    """The session date of a daily candle starting at ``time_ms``.

    Feeds stamp a daily bar either at UTC midnight or at a New York instant of that day;
    a bar exactly at UTC midnight is that UTC date, anything else the New York date.
    """
    instant = _from_ms(time_ms)
    if instant.hour == instant.minute == instant.second == instant.microsecond == 0:
        return instant.date()
    return instant.astimezone(_NEW_YORK).date()


def candle_from_sdk(event: SdkCandle) -> DailyCandle:
    """A daily candle; the ticker comes from the candle symbol."""
    return DailyCandle(
        symbol=candle_ticker(event.event_symbol),
        day=candle_day(event.time),
        open=event.open,
        high=event.high,
        low=event.low,
        close=event.close,
        volume=event.volume if event.volume is not None and event.volume.is_finite() else None,
    )
