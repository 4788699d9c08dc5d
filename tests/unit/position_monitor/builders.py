"""Plain values for the monitor core's tests: a QQQ Trident expiring 2026-02-20, W = 3."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from libs.contracts.market import Quote
from libs.contracts.positions import PositionSpread
from libs.contracts.strategy import PROFIT_TARGETS, SpreadKind
from libs.contracts.symbols import OccSymbol, OptionType

D = Decimal
EXPIRATION = date(2026, 2, 20)
NOW = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)  # 11:00 New York, DTE 46
POSITION = UUID("00000000-0000-4000-8000-000000000001")
ACCOUNT = "5WT00001"


def occ(option_type: OptionType, strike: int | str, expiration: date = EXPIRATION) -> OccSymbol:
    return OccSymbol.build("QQQ", expiration, option_type, D(str(strike)))


SHORT_PUT = occ(OptionType.PUT, 592)
LONG_PUT = occ(OptionType.PUT, 589)
SHORT_CALL = occ(OptionType.CALL, 592)
LONG_CALL = occ(OptionType.CALL, 595)


def spread(
    kind: SpreadKind = SpreadKind.PUT_SPREAD_1,
    entry: str | Decimal = "1.05",
    quantity: int = 1,
    width: int = 3,
) -> PositionSpread:
    if kind is SpreadKind.CALL_SPREAD:
        short, long = SHORT_CALL, occ(OptionType.CALL, 592 + width)
    else:
        short, long = SHORT_PUT, occ(OptionType.PUT, 592 - width)
    return PositionSpread(
        kind=kind,
        short_symbol=short,
        long_symbol=long,
        quantity=quantity,
        entry_credit=D(str(entry)),
        profit_target=PROFIT_TARGETS[kind],
    )


def trident(put_entry: str = "1.05", call_entry: str = "0.80") -> tuple[PositionSpread, ...]:
    return (
        spread(SpreadKind.PUT_SPREAD_1, put_entry),
        spread(SpreadKind.PUT_SPREAD_2, put_entry),
        spread(SpreadKind.CALL_SPREAD, call_entry),
    )


def quote(symbol: str, bid: str, ask: str, at: datetime = NOW) -> Quote:
    return Quote(symbol=symbol, bid=D(bid), ask=D(ask), quoted_at=at)


def quotes(*items: Quote) -> dict[str, Quote]:
    return {q.symbol: q for q in items}
