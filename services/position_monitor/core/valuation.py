"""Valuing open spreads from quotes, and when to publish the valuation (DOMAIN.md 6, 8).

Per spread (per share): closing cost at mid = short mid - long mid; natural closing
cost = short ask - long bid (what an immediate close pays). Unrealised P&L (dollars) =
(entry credit - closing cost at mid) x 100 x quantity. Figures are exact: mids are at
most half a cent finer than the quotes, and nothing here rounds, so a replay of the
``PositionUpdated`` carrying these figures reproduces them to the cent and beyond.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from libs.contracts.market import Quote
from libs.contracts.positions import PositionSpread, SpreadMark
from libs.contracts.strategy import SpreadKind
from libs.domain.money import dollars
from libs.runtime.clock import require_aware
from libs.runtime.market_hours import ny_date
from services.position_monitor.core.errors import MissingQuote

#: Positions and P&L are published at most this often per position (DOMAIN.md 8).
VALUATION_INTERVAL = timedelta(seconds=10)
_ZERO = Decimal(0)


def days_to_expiration(expiration: date, now: datetime) -> int:
    """Calendar days from the New York date at ``now`` to ``expiration`` (negative after it)."""
    return (expiration - ny_date(require_aware(now))).days


def unrealized_pnl(entry_credit: Decimal, closing_cost: Decimal, quantity: int) -> Decimal:
    """(Entry credit - closing cost) x 100 x quantity, in dollars."""
    return dollars(entry_credit - closing_cost, quantity)


def realized_pnl(entry_credit: Decimal, exit_debit: Decimal, quantity: int) -> Decimal:
    """(Entry credit - exit debit) x 100 x quantity, in dollars."""
    return dollars(entry_credit - exit_debit, quantity)


@dataclass(frozen=True, slots=True)
class SpreadValue:
    """One open spread valued at two quotes."""

    kind: SpreadKind
    entry_credit: Decimal
    quantity: int
    closing_cost_mid: Decimal
    """Short mid - long mid (per share)."""
    closing_cost_natural: Decimal
    """Short ask - long bid (per share)."""
    short_quote: Quote
    long_quote: Quote

    @property
    def unrealized_pnl(self) -> Decimal:
        """(Entry credit - closing cost at mid) x 100 x quantity."""
        return unrealized_pnl(self.entry_credit, self.closing_cost_mid, self.quantity)

    def mark(self) -> SpreadMark:
        """The figures as ``PositionUpdated`` carries them."""
        return SpreadMark(
            kind=self.kind,
            closing_cost_mid=self.closing_cost_mid,
            closing_cost_natural=self.closing_cost_natural,
            unrealized_pnl=self.unrealized_pnl,
        )


def _quote(quotes: Mapping[str, Quote], symbol: str) -> Quote:
    found = quotes.get(symbol)
    if found is None:
        raise MissingQuote(symbol)
    return found


def value_spread(spread: PositionSpread, quotes: Mapping[str, Quote]) -> SpreadValue:
    """``spread`` valued at ``quotes`` (by OCC symbol); raises `MissingQuote`."""
    short = _quote(quotes, spread.short_symbol)
    long = _quote(quotes, spread.long_symbol)
    return SpreadValue(
        kind=spread.kind,
        entry_credit=spread.entry_credit,
        quantity=spread.quantity,
        closing_cost_mid=short.mid - long.mid,
        closing_cost_natural=short.ask - long.bid,
        short_quote=short,
        long_quote=long,
    )


@dataclass(frozen=True, slots=True)
class PositionValuation:
    """A position's open spreads valued at one set of quotes."""

    spreads: tuple[SpreadValue, ...]
    dte: int
    """Calendar days to expiration in New York; 0 on and after the expiration date."""

    @property
    def unrealized_pnl(self) -> Decimal:
        """Sum over the open spreads (dollars)."""
        return sum((s.unrealized_pnl for s in self.spreads), _ZERO)

    @property
    def marks(self) -> tuple[Quote, ...]:
        """Every quote used, once per symbol, in symbol order (deterministic events)."""
        by_symbol: dict[str, Quote] = {}
        for spread in self.spreads:
            by_symbol[spread.short_quote.symbol] = spread.short_quote
            by_symbol[spread.long_quote.symbol] = spread.long_quote
        return tuple(by_symbol[symbol] for symbol in sorted(by_symbol))

    @property
    def figures(self) -> ValuationFigures:
        """What a reader sees of this valuation (compared to decide whether to publish)."""
        return ValuationFigures(
            spreads=tuple(s.mark() for s in self.spreads),
            unrealized_pnl=self.unrealized_pnl,
            dte=self.dte,
        )

    def spread(self, kind: SpreadKind) -> SpreadValue | None:
        """The open spread of ``kind``, if valued."""
        return next((s for s in self.spreads if s.kind is kind), None)

    def event_fields(self) -> dict[str, Any]:
        """The payload of ``PositionUpdated`` (without envelope, ``position_id``, Greeks)."""
        figures = self.figures
        return {
            "marks": self.marks,
            "spreads": figures.spreads,
            "unrealized_pnl": figures.unrealized_pnl,
            "dte": figures.dte,
        }


def value_position(
    spreads: Sequence[PositionSpread],
    expiration: date,
    quotes: Mapping[str, Quote],
    now: datetime,
) -> PositionValuation:
    """The open ``spreads`` of a position valued at ``quotes``; raises `MissingQuote`.

    ``spreads`` must be the ones still open: a closed spread has no unrealised P&L.
    DTE is floored at 0 because ``PositionUpdated.dte`` cannot be negative; a position
    past its expiration is settled (EXPIRED) by the shell, not valued.
    """
    if not spreads:
        raise ValueError("a valuation needs at least one open spread")
    return PositionValuation(
        spreads=tuple(value_spread(s, quotes) for s in spreads),
        dte=max(days_to_expiration(expiration, now), 0),
    )


@dataclass(frozen=True, slots=True)
class ValuationFigures:
    """The published figures of a valuation: what "the values changed" compares.

    Quote timestamps are deliberately left out: a new quote at the same prices changes
    no figure, so it is no reason to publish.
    """

    spreads: tuple[SpreadMark, ...]
    unrealized_pnl: Decimal
    dte: int


@dataclass(frozen=True, slots=True)
class Published:
    """The last valuation published for a position, and when (business time)."""

    at: datetime
    figures: ValuationFigures


def valuation_due(
    last: Published | None,
    current: ValuationFigures,
    now: datetime,
    interval: timedelta = VALUATION_INTERVAL,
) -> bool:
    """Whether to publish ``current`` now: the first one, then at most every ``interval``
    and only when a figure differs from the last published one.
    """
    if last is None:
        return True
    if require_aware(now) - require_aware(last.at) < interval:
        return False
    return current != last.figures
