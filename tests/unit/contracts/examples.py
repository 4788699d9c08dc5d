"""Hand-built messages from DOMAIN.md's worked example: QQQ at 591, W = 3.

K = 592: sell 2x 592P, buy 2x 589P, sell 1x 592C, buy 1x 595C, expiring 2025-12-19.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from libs.contracts.execution import LegFill, OrderAction, OrderFilled, OrderLeg
from libs.contracts.market import Quote
from libs.contracts.strategy import SpreadKind, SpreadLeg, SuggestedSpread, Suggestion
from libs.contracts.symbols import OccSymbol

ACCOUNT = "5WT00001"
NOW = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)
EXPIRATION = date(2025, 12, 19)
CORRELATION = UUID("01970000-0000-7000-8000-000000000001")

PUT_592 = OccSymbol("QQQ   251219P00592000")
PUT_589 = OccSymbol("QQQ   251219P00589000")
CALL_592 = OccSymbol("QQQ   251219C00592000")
CALL_595 = OccSymbol("QQQ   251219C00595000")


def envelope(*, account: str | None = ACCOUNT, producer: str = "test") -> dict[str, Any]:
    """Envelope fields for an event (pass ``account=None`` for market-wide events)."""
    fields: dict[str, Any] = {
        "occurred_at": NOW,
        "producer": producer,
        "correlation_id": CORRELATION,
    }
    if account is not None:
        fields["account_id"] = account
    return fields


def leg(symbol: OccSymbol, bid: str, ask: str) -> SpreadLeg:
    """A priced leg; mid = (bid + ask) / 2."""
    b, a = Decimal(bid), Decimal(ask)
    return SpreadLeg(symbol=symbol, bid=b, ask=a, mid=(b + a) / 2)


def spread(kind: SpreadKind, short: SpreadLeg, long: SpreadLeg) -> SuggestedSpread:
    """A spread with its credits computed as DOMAIN.md 3 defines them."""
    return SuggestedSpread(
        kind=kind,
        short_leg=short,
        long_leg=long,
        natural_credit=short.bid - long.ask,
        mid_credit=short.mid - long.mid,
    )


def qqq_spreads(*, with_calls: bool = True) -> tuple[SuggestedSpread, ...]:
    """The worked example's spreads at made-up but plausible quotes."""
    put_short, put_long = leg(PUT_592, "9.10", "9.20"), leg(PUT_589, "8.00", "8.10")
    spreads: tuple[SuggestedSpread, ...] = (
        spread(SpreadKind.PUT_SPREAD_1, put_short, put_long),
        spread(SpreadKind.PUT_SPREAD_2, put_short, put_long),
    )
    if with_calls:
        call = spread(
            SpreadKind.CALL_SPREAD, leg(CALL_592, "8.50", "8.60"), leg(CALL_595, "7.00", "7.10")
        )
        spreads += (call,)
    return spreads


def qqq_suggestion(**overrides: Any) -> Suggestion:
    """The worked example as a suggestion; ``overrides`` replace fields before validation."""
    with_calls = not overrides.get("near_bollinger_band", False)
    spreads = overrides.pop("spreads", qqq_spreads(with_calls=with_calls))
    total_mid = sum((s.mid_credit for s in spreads), Decimal(0))
    values: dict[str, Any] = {
        "suggestion_id": UUID("01970000-0000-7000-8000-0000000000a1"),
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
        "underlying": "QQQ",
        "underlying_price": Decimal("591.00"),
        "expiration": EXPIRATION,
        "dte": 45,
        "base_strike": Decimal(592),
        "short_strike": Decimal(592),
        "width": Decimal(3),
        "tradeable_capital": Decimal("20000"),
        "spreads": spreads,
        "near_bollinger_band": False,
        "total_natural_credit": sum((s.natural_credit for s in spreads), Decimal(0)),
        "total_mid_credit": total_mid,
        "max_profit": total_mid * 100,
        "max_risk": 2 * Decimal(3) * 100 - total_mid * 100,
        "required_capital": 2 * Decimal(3) * 100,
        "iv_rank": Decimal("45.2"),
        "quotes": (
            Quote(symbol="QQQ", bid=Decimal("590.99"), ask=Decimal("591.01"), quoted_at=NOW),
        ),
    }
    values.update(overrides)
    return Suggestion(**values)


def opening_fill(fill_price: str = "1.10") -> OrderFilled:
    """An opening order of the example, filled on its short put leg only (for codec tests)."""
    return OrderFilled(
        **envelope(producer="execution"),
        order_id=UUID("01970000-0000-7000-8000-0000000000b1"),
        broker_order_id="1001",
        legs=(
            LegFill(
                symbol=PUT_592,
                action=OrderAction.SELL_TO_OPEN,
                quantity=2,
                fill_price=Decimal(fill_price),
                broker_fill_id="f-1",
                filled_at=NOW,
            ),
        ),
    )


def trident_legs(action_open: bool = True) -> tuple[OrderLeg, ...]:
    """The 2:2:1:1 opening legs (or their closing counterparts)."""
    sell = OrderAction.SELL_TO_OPEN if action_open else OrderAction.SELL_TO_CLOSE
    buy = OrderAction.BUY_TO_OPEN if action_open else OrderAction.BUY_TO_CLOSE
    return (
        OrderLeg(symbol=PUT_592, action=sell, quantity=2),
        OrderLeg(symbol=PUT_589, action=buy, quantity=2),
        OrderLeg(symbol=CALL_592, action=sell, quantity=1),
        OrderLeg(symbol=CALL_595, action=buy, quantity=1),
    )
