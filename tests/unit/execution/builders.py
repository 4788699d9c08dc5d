"""Plain values for execution's core tests (the domain's examples, DOMAIN.md 1 and 6)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from libs.broker.models import BrokerOrder
from libs.contracts.execution import LegFill, OrderAction, OrderLeg, OrderStatus
from libs.contracts.symbols import OccSymbol, OptionType

D = Decimal
EXPIRY = date(2025, 7, 18)
AT = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)
ORDER_ID = UUID("01970000-0000-7000-8000-000000000001")


def occ(strike: int, option_type: OptionType = OptionType.PUT, root: str = "QQQ") -> OccSymbol:
    return OccSymbol.build(root, EXPIRY, option_type, D(strike))


#: The worked example: QQQ 592/589 puts x2, 592/595 calls x1.
SHORT_PUT, LONG_PUT = occ(592), occ(589)
SHORT_CALL, LONG_CALL = occ(592, OptionType.CALL), occ(595, OptionType.CALL)
TRIDENT_LEGS = (
    OrderLeg(symbol=SHORT_PUT, action=OrderAction.SELL_TO_OPEN, quantity=2),
    OrderLeg(symbol=LONG_PUT, action=OrderAction.BUY_TO_OPEN, quantity=2),
    OrderLeg(symbol=SHORT_CALL, action=OrderAction.SELL_TO_OPEN, quantity=1),
    OrderLeg(symbol=LONG_CALL, action=OrderAction.BUY_TO_OPEN, quantity=1),
)


def fill(
    symbol: OccSymbol, action: OrderAction, quantity: int, price: str, fill_id: str
) -> LegFill:
    return LegFill(
        symbol=symbol,
        action=action,
        quantity=quantity,
        fill_price=D(price),
        broker_fill_id=fill_id,
        filled_at=AT,
    )


def trident_fills(
    short_put: str = "2.10",
    long_put: str = "1.05",
    short_call: str = "1.60",
    long_call: str = "0.80",
) -> tuple[LegFill, ...]:
    return (
        fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, 2, short_put, "f1"),
        fill(LONG_PUT, OrderAction.BUY_TO_OPEN, 2, long_put, "f2"),
        fill(SHORT_CALL, OrderAction.SELL_TO_OPEN, 1, short_call, "f3"),
        fill(LONG_CALL, OrderAction.BUY_TO_OPEN, 1, long_call, "f4"),
    )


def report(
    status: OrderStatus,
    fills: tuple[LegFill, ...] = (),
    *,
    reject_reason: str | None = None,
    replaced_by: str | None = None,
) -> BrokerOrder:
    return BrokerOrder(
        broker_order_id="101",
        account_number="5WT00001",
        status=status,
        broker_status=status.value,
        underlying="QQQ",
        legs=TRIDENT_LEGS,
        limit_price=D("2.50"),
        time_in_force="Day",
        client_tag="sx-0",
        fills=fills,
        reject_reason=reject_reason,
        replaced_by_broker_order_id=replaced_by,
        updated_at=AT,
    )


def _spread_leg(symbol: OccSymbol, bid: str, ask: str) -> Any:
    from libs.contracts.strategy import SpreadLeg

    b, a = D(bid), D(ask)
    return SpreadLeg(symbol=symbol, bid=b, ask=a, mid=(b + a) / 2)


def suggestion(*, calls: bool = True) -> Any:
    """The worked example as a suggestion (QQQ 591 -> K 592, W 3)."""
    from datetime import timedelta

    from libs.contracts.market import Quote
    from libs.contracts.strategy import SpreadKind, SuggestedSpread, Suggestion

    def spread(kind: SpreadKind, short: Any, long: Any) -> SuggestedSpread:
        return SuggestedSpread(
            kind=kind,
            short_leg=short,
            long_leg=long,
            natural_credit=short.bid - long.ask,
            mid_credit=short.mid - long.mid,
        )

    puts = (_spread_leg(SHORT_PUT, "2.05", "2.15"), _spread_leg(LONG_PUT, "1.00", "1.10"))
    spreads = [spread(SpreadKind.PUT_SPREAD_1, *puts), spread(SpreadKind.PUT_SPREAD_2, *puts)]
    if calls:
        spreads.append(
            spread(
                SpreadKind.CALL_SPREAD,
                _spread_leg(SHORT_CALL, "1.55", "1.65"),
                _spread_leg(LONG_CALL, "0.75", "0.85"),
            )
        )
    return Suggestion(
        suggestion_id=UUID("01970000-0000-7000-8000-0000000000aa"),
        created_at=AT,
        expires_at=AT + timedelta(hours=24),
        underlying="QQQ",
        underlying_price=D(591),
        expiration=EXPIRY,
        dte=45,
        base_strike=D(592),
        short_strike=D(592),
        width=D(3),
        tradeable_capital=D(20000),
        spreads=tuple(spreads),
        near_bollinger_band=not calls,
        band_reason=None if calls else "at the lower band",
        total_natural_credit=sum((s.natural_credit for s in spreads), D(0)),
        total_mid_credit=sum((s.mid_credit for s in spreads), D(0)),
        max_profit=D(0),
        max_risk=D(0),
        required_capital=D(600),
        quotes=(Quote(symbol="QQQ", bid=D(591), ask=D(591), quoted_at=AT),),
    )
