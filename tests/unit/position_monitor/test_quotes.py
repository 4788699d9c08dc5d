"""Quotes: request batching, lease renewal at half-life, the poll cadence and freshness."""

from __future__ import annotations

from datetime import timedelta

import structlog

from libs.contracts.commands import Command, GetQuotes, QuotesReply, Reply, WatchReply, WatchSymbols
from libs.contracts.errors import MarketDataStaleError
from services.position_monitor.quotes import (
    QUOTES_PER_REQUEST,
    WATCH_PER_REQUEST,
    Quotes,
    batches,
    leases_due,
)
from services.position_monitor.settings import MonitorSettings
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import (
    LONG_CALL,
    LONG_PUT,
    NOW,
    SHORT_CALL,
    SHORT_PUT,
    quote,
)
from tests.unit.position_monitor.fakes import FakeShell, fold, opened

LEGS = sorted({SHORT_PUT, LONG_PUT, SHORT_CALL, LONG_CALL})


def test_batches_keep_the_order_and_cap_each_request() -> None:
    symbols = [f"S{i:03}" for i in range(450)]
    chunks = batches(symbols, QUOTES_PER_REQUEST)
    assert [len(c) for c in chunks] == [200, 200, 50]
    assert [s for c in chunks for s in c] == symbols
    assert batches([], WATCH_PER_REQUEST) == []
    assert batches(["A", "B"], 2) == [("A", "B")]


def test_a_lease_is_renewed_from_half_life_and_a_new_symbol_at_once() -> None:
    lease = 3600
    leases = {
        "FRESH": NOW + timedelta(seconds=3600),
        "HALF": NOW + timedelta(seconds=1800),
        "LATE": NOW + timedelta(seconds=1799),
        "GONE": NOW - timedelta(seconds=1),
    }
    due = leases_due([*leases, "NEW"], leases, NOW, lease)
    assert due == ["GONE", "LATE", "NEW"]


class Market:
    """Answers GetQuotes for the legs and WatchSymbols for an hour."""

    def __init__(self) -> None:
        self.down = False

    def __call__(self, command: Command) -> Reply:
        if self.down:
            raise MarketDataStaleError("market data is away")
        if isinstance(command, WatchSymbols):
            return WatchReply(
                symbols=command.symbols,
                watched_until=NOW + timedelta(seconds=command.lease_seconds),
            )
        assert isinstance(command, GetQuotes)
        return QuotesReply(quotes=tuple(quote(s, "1.00", "1.10") for s in command.symbols))


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def quotes_for(state: MonitorState) -> tuple[Quotes, FakeShell, Market, Ticks]:
    shell = FakeShell(state)
    market = Market()
    shell.fake_bus.answer = market
    ticks = Ticks()
    quotes = Quotes(
        shell, state, MonitorSettings(quote_poll_s=2.0), structlog.get_logger(), monotonic=ticks
    )
    return quotes, shell, market, ticks


async def test_a_poll_leases_then_fetches_every_leg_and_is_fresh_once() -> None:
    quotes, shell, _, _ = quotes_for(fold(opened()))
    await quotes.poll_if_due()
    watch, get = shell.fake_bus.requests
    assert isinstance(watch, WatchSymbols)
    assert list(watch.symbols) == LEGS
    assert isinstance(get, GetQuotes)
    assert list(get.symbols) == LEGS
    assert set(quotes.latest) == set(LEGS)
    assert quotes.take_fresh() is True
    assert quotes.take_fresh() is False


async def test_polls_follow_the_real_time_cadence_and_leases_their_half_life() -> None:
    quotes, shell, _, ticks = quotes_for(fold(opened()))
    await quotes.poll_if_due()
    ticks.now += 1.9
    await quotes.poll_if_due()
    assert len(shell.fake_bus.requests) == 2  # not due yet
    ticks.now += 0.1
    await quotes.poll_if_due()
    # Due again: quotes fetched, the leases (an hour from NOW) not renewed.
    assert [type(r) for r in shell.fake_bus.requests] == [WatchSymbols, GetQuotes, GetQuotes]
    shell.clock.advance(timedelta(minutes=31))
    ticks.now += 2
    await quotes.poll_if_due()
    assert type(shell.fake_bus.requests[3]) is WatchSymbols


async def test_nothing_is_polled_without_managed_positions() -> None:
    quotes, shell, _, _ = quotes_for(MonitorState())
    await quotes.poll_if_due()
    assert shell.fake_bus.requests == []
    assert quotes.take_fresh() is False


async def test_unavailable_quotes_are_not_fresh() -> None:
    quotes, _, market, _ = quotes_for(fold(opened()))
    market.down = True
    await quotes.poll_if_due()
    assert quotes.take_fresh() is False
    assert quotes.latest == {}


async def test_fetch_keeps_the_latest_quote_of_each_symbol() -> None:
    quotes, shell, _, _ = quotes_for(MonitorState())
    found = await quotes.fetch("5WT00001", [SHORT_PUT])
    assert set(found) == {SHORT_PUT}
    assert quotes.latest[SHORT_PUT] == found[SHORT_PUT]
    assert len(shell.fake_bus.requests) == 1
