"""Marks: what the book says was published last, and a valuation pass."""

from __future__ import annotations

from datetime import timedelta

import structlog
from prometheus_client import CollectorRegistry

from libs.contracts.commands import Command, GetQuotes, QuotesReply, Reply
from libs.contracts.execution import OrderPurpose
from libs.contracts.market import Quote
from libs.contracts.positions import ExitOrderPlaced, PositionUpdated
from services.position_monitor.exits import Exits
from services.position_monitor.marks import Marks, published
from services.position_monitor.metrics import MonitorCounters
from services.position_monitor.quotes import Quotes
from services.position_monitor.settings import MonitorSettings
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    LONG_CALL,
    LONG_PUT,
    NOW,
    POSITION,
    SHORT_CALL,
    SHORT_PUT,
    quote,
)
from tests.unit.position_monitor.fakes import PS1, PS2, FakeShell, fold, opened

CALM = [
    quote(SHORT_PUT, "0.90", "1.00"),
    quote(LONG_PUT, "0.30", "0.40"),
    quote(SHORT_CALL, "0.30", "0.35"),
    quote(LONG_CALL, "0.10", "0.15"),
]
LOSING = [
    quote(SHORT_PUT, "2.60", "2.70"),
    quote(LONG_PUT, "0.40", "0.50"),
    quote(SHORT_CALL, "0.30", "0.35"),
    quote(LONG_CALL, "0.10", "0.15"),
]


def marks_for(state: MonitorState) -> tuple[Marks, Quotes, FakeShell]:
    shell = FakeShell(state)
    log = structlog.get_logger()
    quotes = Quotes(shell, state, MonitorSettings(), log)
    exits = Exits(shell, state, MonitorCounters.register(CollectorRegistry()), log)
    return Marks(shell, state, quotes, exits), quotes, shell


async def known(quotes: Quotes, shell: FakeShell, market: list[Quote]) -> None:
    """Quotes as a poll would have left them (market data quotes ``market`` only)."""

    def answer(command: Command) -> Reply:
        assert isinstance(command, GetQuotes)
        return QuotesReply(quotes=tuple(q for q in market if q.symbol in command.symbols))

    shell.fake_bus.answer = answer
    await quotes.fetch(ACCOUNT, sorted({SHORT_PUT, LONG_PUT, SHORT_CALL, LONG_CALL}))
    shell.fake_bus.requests.clear()


def test_nothing_was_published_before_the_first_valuation() -> None:
    state = fold(opened())
    record = state.position(ACCOUNT, POSITION)
    assert record is not None
    assert published(record) is None


async def test_a_valuation_is_published_then_folded_as_the_last_one() -> None:
    state = fold(opened())
    marks, quotes, shell = marks_for(state)
    await known(quotes, shell, CALM)
    await marks.mark_to_market(NOW)
    (update,) = shell.events()
    assert isinstance(update, PositionUpdated)
    record = state.position(ACCOUNT, POSITION)
    assert record is not None
    last = published(record)
    assert last is not None
    assert (last.at, last.figures.unrealized_pnl) == (NOW, update.unrealized_pnl)
    assert last.figures.dte == update.dte
    # The same figures again within 10 s: nothing new to publish.
    await marks.mark_to_market(NOW + timedelta(seconds=5))
    assert len(shell.events()) == 1


async def test_a_losing_valuation_publishes_the_update_then_the_stops() -> None:
    state = fold(opened())
    marks, quotes, shell = marks_for(state)
    await known(quotes, shell, LOSING)
    await marks.mark_to_market(NOW)
    update, *stops = shell.events()
    assert isinstance(update, PositionUpdated)
    assert [(type(s), getattr(s, "spread_kind", None)) for s in stops] == [
        (ExitOrderPlaced, PS1),
        (ExitOrderPlaced, PS2),
    ]
    assert all(getattr(s, "purpose", None) is OrderPurpose.STOP_LOSS for s in stops)


async def test_a_position_not_quoted_on_every_leg_is_not_valued() -> None:
    state = fold(opened())
    marks, quotes, shell = marks_for(state)
    await known(quotes, shell, LOSING[:3])
    await marks.mark_to_market(NOW)
    assert shell.events() == []
