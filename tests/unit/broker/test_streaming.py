"""Streams over scripted fakes of the SDK streamers: mapping, fan-out, reconnects, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import httpx2
import pytest
from httpx2.websockets import WebSocketDisconnect
from tastytrade.account import AccountBalance, CurrentPosition
from tastytrade.dxfeed import Candle, Greeks, Quote
from tastytrade.order import PlacedOrder

from libs.broker.mapping import candle_day, streamer_symbol
from libs.broker.models import StreamState
from libs.broker.streaming import (
    AccountStream,
    MarketStream,
    backoff_delay,
    stream_error,
)
from libs.contracts.errors import BrokerTimeout, BrokerUnavailable, ErrorKind
from tests.unit.broker import wire

OPTION = wire.PUT  # "SPY   250620P00500000"
OPTION_DX = ".SPY250620P500"
NOW = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


class FakeSocket:
    """One connection of a fake SDK streamer: records calls, feeds scripted events."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.queues: dict[type[Any], asyncio.Queue[Any]] = {}
        self.host: asyncio.Task[Any] | None = None
        self.dropped = False

    def queue(self, cls: type[Any]) -> asyncio.Queue[Any]:
        return self.queues.setdefault(cls, asyncio.Queue())

    def push(self, event: Any) -> None:
        self.queue(type(event)).put_nowait(event)

    def drop(self) -> None:
        """The server closes the socket: the SDK cancels the body and raises on exit."""
        self.dropped = True
        assert self.host is not None
        self.host.cancel()

    async def listen(self, cls: type[Any]) -> AsyncIterator[Any]:
        while True:
            yield await self.queue(cls).get()

    # DXLinkStreamer surface
    async def subscribe(self, cls: type[Any], symbols: list[str]) -> None:
        self.calls.append(("subscribe", cls.__name__, tuple(symbols)))

    async def unsubscribe(self, cls: type[Any], symbols: list[str]) -> None:
        self.calls.append(("unsubscribe", cls.__name__, tuple(symbols)))

    async def subscribe_candle(
        self, symbols: list[str], interval: str, start_time: datetime | None = None
    ) -> None:
        self.calls.append(("subscribe_candle", tuple(symbols), interval, start_time))

    async def unsubscribe_candle(self, ticker: str, interval: str | None = None) -> None:
        self.calls.append(("unsubscribe_candle", ticker, interval))

    # AlertStreamer surface
    async def subscribe_accounts(self, accounts: list[Any]) -> None:
        self.calls.append(("subscribe_accounts", tuple(a.account_number for a in accounts)))


class FakeBroker:
    """A factory of fake connections; can refuse connections."""

    def __init__(self) -> None:
        self.sockets: list[FakeSocket] = []
        self.refuse = 0
        self.opened = asyncio.Event()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Any]:
        if self.refuse:
            self.refuse -= 1
            raise httpx2.ConnectError("connection refused")
        socket = FakeSocket()
        socket.host = asyncio.current_task()
        self.sockets.append(socket)
        self.opened.set()
        try:
            yield socket
        except asyncio.CancelledError:
            if not socket.dropped:
                raise
            cast(asyncio.Task[Any], socket.host).uncancel()
            raise ExceptionGroup("streamer", [WebSocketDisconnect(1012, "dropped")]) from None

    @property
    def last(self) -> FakeSocket:
        return self.sockets[-1]


class Sleeps:
    """Records backoff waits; returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def quote(symbol: str, bid: str, ask: str, ms: int = 0) -> Quote:
    return Quote.from_stream([symbol, 0, 0, 0, ms, "Q", ms, "Q", bid, ask, 10, 20])[0]


def market(broker: FakeBroker, sleeps: Sleeps | None = None) -> MarketStream:
    return MarketStream(
        connect=cast(Any, broker.connect), sleep=sleeps or Sleeps(), clock=FixedClock()
    )


def test_backoff_doubles_from_half_a_second_and_caps_at_30() -> None:
    delays = [backoff_delay(n) for n in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_stream_errors_are_translated() -> None:
    group = ExceptionGroup("x", [WebSocketDisconnect(1006)])
    assert isinstance(stream_error(group), BrokerUnavailable)
    assert isinstance(stream_error(httpx2.ConnectError("no")), BrokerUnavailable)
    assert isinstance(stream_error(httpx2.ReadTimeout("slow")), BrokerTimeout)


def test_streamer_symbols_and_candle_days() -> None:
    assert streamer_symbol("QQQ") == "QQQ"
    assert streamer_symbol(OPTION) == OPTION_DX
    assert candle_day(round(datetime(2025, 6, 2, tzinfo=UTC).timestamp() * 1000)) == date(
        2025, 6, 2
    )
    ny_open = datetime.fromisoformat("2025-06-02T09:30:00-04:00")
    assert candle_day(round(ny_open.timestamp() * 1000)) == date(2025, 6, 2)


async def test_quotes_map_symbols_both_ways_and_keep_decimals() -> None:
    broker = FakeBroker()
    async with market(broker) as stream:
        subscription = stream.quotes(["QQQ", OPTION])
        await stream.wait_connected(timeout=2)
        assert broker.last.calls == [("subscribe", "Quote", (OPTION_DX, "QQQ"))]
        broker.last.push(quote("QQQ", "500.10", "500.20", ms=1748962800000))
        broker.last.push(quote(OPTION_DX, "1.05", "1.10"))
        first, second = await subscription.get(1), await subscription.get(1)
        assert first.symbol == "QQQ"
        assert (first.bid, first.ask, first.bid_size) == (Decimal("500.10"), Decimal("500.20"), 10)
        assert first.quoted_at == datetime.fromtimestamp(1748962800, tz=UTC)
        assert second.symbol == OPTION
        assert second.mid == Decimal("1.075")
        assert second.quoted_at == NOW  # no source time: the injected clock's
        assert stream.health().state is StreamState.CONNECTED
    assert stream.state is StreamState.STOPPED
    assert [q async for q in subscription] == []  # ended by the stream's close


async def test_greeks_arrive_for_an_option() -> None:
    broker = FakeBroker()
    async with market(broker) as stream:
        subscription = stream.greeks([OPTION])
        await stream.wait_connected(timeout=2)
        event = Greeks.from_stream(
            [OPTION_DX, 0, 0, 0, 1748962800000, 0, 5.1, 0.2, -0.3, 0.01, -0.1, 0.05, 0.3]
        )[0]
        broker.last.push(event)
        greeks = await subscription.get(1)
        assert greeks.symbol == OPTION
        assert greeks.delta == Decimal("-0.3")
        assert greeks.volatility == Decimal("0.2")
        assert greeks.computed_at == datetime.fromtimestamp(1748962800, tz=UTC)


async def test_shared_symbols_are_subscribed_once_and_dropped_when_unwanted() -> None:
    broker = FakeBroker()
    async with market(broker) as stream:
        a = stream.quotes(["QQQ"])
        await stream.wait_connected(timeout=2)
        b = stream.quotes(["QQQ", "SPY"])
        await settle()
        assert broker.last.calls == [
            ("subscribe", "Quote", ("QQQ",)),
            ("subscribe", "Quote", ("SPY",)),
        ]
        broker.last.push(quote("QQQ", "1", "2"))
        assert (await a.get(1)).symbol == (await b.get(1)).symbol == "QQQ"
        assert stream.health().subscriptions == 2
        b.close()
        await settle()
        assert broker.last.calls[-1] == ("unsubscribe", "Quote", ("SPY",))
        a.close()
        await settle()
        assert broker.last.calls[-1] == ("unsubscribe", "Quote", ("QQQ",))
        assert stream.health().subscriptions == 0


async def test_a_dropped_socket_reconnects_resubscribes_once_and_delivers_again() -> None:
    broker, sleeps = FakeBroker(), Sleeps()
    async with market(broker, sleeps) as stream:
        quotes = stream.quotes(["QQQ", OPTION])
        greeks = stream.greeks([OPTION])
        await stream.wait_connected(timeout=2)
        first = broker.last
        broker.opened.clear()
        first.drop()
        await asyncio.wait_for(broker.opened.wait(), 2)
        await stream.wait_connected(timeout=2)
        second = broker.last
        assert second is not first
        assert sorted(second.calls) == [
            ("subscribe", "Greeks", (OPTION_DX,)),
            ("subscribe", "Quote", (OPTION_DX, "QQQ")),
        ]
        assert sleeps.delays == [0.5]
        health = stream.health()
        assert health.reconnects == 1
        assert health.last_error_kind == ErrorKind.BROKER_UNAVAILABLE.value
        assert health.state is StreamState.CONNECTED
        second.push(quote("QQQ", "3", "4"))
        assert (await quotes.get(1)).bid == Decimal(3)
        second.push(
            Greeks.from_stream([OPTION_DX, 0, 0, 0, 0, 0, 5, 0.2, -0.3, 0.01, -0.1, 0.05, 0.3])[0]
        )
        assert (await greeks.get(1)).symbol == OPTION


async def test_refused_connections_back_off_exponentially_then_reset() -> None:
    broker, sleeps = FakeBroker(), Sleeps()
    broker.refuse = 8
    async with market(broker, sleeps) as stream:
        stream.quotes(["QQQ"])
        await stream.wait_connected(timeout=2)
        assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
        assert stream.health().reconnects == 8
        broker.refuse = 1
        broker.last.drop()
        await settle()
        await stream.wait_connected(timeout=2)
        # Connected in between: the backoff starts afresh.
        assert sleeps.delays[8:] == [0.5, 1.0]


async def test_state_reports_reconnecting_while_down() -> None:
    broker = FakeBroker()
    gate = asyncio.Event()

    async def blocked_sleep(seconds: float) -> None:
        await gate.wait()

    stream = MarketStream(connect=cast(Any, broker.connect), sleep=blocked_sleep)
    broker.refuse = 1
    stream.start()
    await settle()
    assert stream.state is StreamState.RECONNECTING
    assert stream.health().last_error_kind == ErrorKind.BROKER_UNAVAILABLE.value
    gate.set()
    await stream.wait_connected(timeout=2)
    await stream.aclose()
    assert stream.health().state is StreamState.STOPPED


async def test_daily_candles_from_a_start_without_repeats_after_reconnect() -> None:
    broker = FakeBroker()
    start = datetime(2024, 6, 3, tzinfo=UTC)
    async with market(broker) as stream:
        candles = stream.daily_candles("QQQ", start)
        await stream.wait_connected(timeout=2)
        assert broker.last.calls == [("subscribe_candle", ("QQQ",), "1d", start)]

        def bar(day: int, close: str) -> Candle:
            t = round(datetime(2025, 6, day, tzinfo=UTC).timestamp() * 1000)
            return Candle.from_stream(
                [
                    "QQQ{=1d,tho=true}",
                    0,
                    0,
                    t,
                    t,
                    0,
                    10,
                    1000,
                    "NaN",
                    "NaN",
                    "NaN",
                    "NaN",
                    0,
                    500,
                    502,
                    498,
                    close,
                ]
            )[0]

        broker.last.push(bar(2, "501"))
        broker.last.push(bar(3, "503.5"))
        got = [await candles.get(1), await candles.get(1)]
        assert [(c.day, c.close) for c in got] == [
            (date(2025, 6, 2), Decimal(501)),
            (date(2025, 6, 3), Decimal("503.5")),
        ]
        assert got[0].symbol == "QQQ"
        assert got[0].volume == Decimal(1000)
        broker.opened.clear()
        broker.last.drop()
        await stream.wait_connected(timeout=2)
        await asyncio.wait_for(broker.opened.wait(), 2)
        assert broker.last.calls == [("subscribe_candle", ("QQQ",), "1d", start)]
        broker.last.push(bar(2, "501"))  # history replayed: not delivered twice
        broker.last.push(bar(3, "504"))  # today's bar moved: delivered
        assert (await candles.get(1)).close == Decimal(504)
        with pytest.raises(TimeoutError):
            await candles.get(0.05)


async def test_naive_candle_start_is_refused() -> None:
    stream = MarketStream(connect=cast(Any, FakeBroker().connect))
    with pytest.raises(ValueError, match="timezone"):
        stream.daily_candles("QQQ", datetime(2025, 1, 1))  # noqa: DTZ001


def account_stream(broker: FakeBroker, sleeps: Sleeps | None = None) -> AccountStream:
    return AccountStream(wire.ACCOUNT, connect=cast(Any, broker.connect), sleep=sleeps or Sleeps())


async def test_order_and_balance_notifications_are_mapped_and_filtered() -> None:
    broker = FakeBroker()
    async with account_stream(broker) as stream:
        orders, balances, positions = stream.orders(), stream.balances(), stream.positions()
        await stream.wait_connected(timeout=2)
        assert broker.last.calls == [("subscribe_accounts", (wire.ACCOUNT,))]
        legs = [
            wire.leg(wire.PUT, "Sell to Open", 1, [wire.fill("f1", 1, "1.50")]),
            wire.leg(wire.LONG_PUT, "Buy to Open", 1, [wire.fill("f2", 1, "0.40")]),
        ]
        other = wire.order(2002) | {"account-number": "5WT99999"}
        broker.last.push(PlacedOrder(**other))
        broker.last.push(PlacedOrder(**wire.order(status="Filled", legs=legs)))
        broker.last.push(AccountBalance(**wire.balance()))
        broker.last.push(CurrentPosition(**wire.position()))
        order = await orders.get(1)
        assert order.broker_order_id == "1001"  # the other account's order was filtered
        assert [(f.symbol, f.fill_price) for f in order.fills] == [
            (wire.PUT, Decimal("1.50")),
            (wire.LONG_PUT, Decimal("0.40")),
        ]
        assert (await balances.get(1)).account_number == wire.ACCOUNT
        assert (await positions.get(1)).quantity == -2
        with pytest.raises(TimeoutError):
            await orders.get(0.05)


async def test_account_stream_resubscribes_after_a_drop() -> None:
    broker, sleeps = FakeBroker(), Sleeps()
    async with account_stream(broker, sleeps) as stream:
        orders = stream.orders()
        await stream.wait_connected(timeout=2)
        broker.opened.clear()
        broker.last.drop()
        await asyncio.wait_for(broker.opened.wait(), 2)
        await stream.wait_connected(timeout=2)
        assert len(broker.sockets) == 2
        assert broker.last.calls == [("subscribe_accounts", (wire.ACCOUNT,))]
        assert stream.health().reconnects == 1
        assert sleeps.delays == [0.5]
        broker.last.push(PlacedOrder(**wire.order()))
        assert (await orders.get(1)).broker_order_id == "1001"


async def test_unmappable_notifications_are_skipped() -> None:
    broker = FakeBroker()
    async with account_stream(broker) as stream:
        orders = stream.orders()
        await stream.wait_connected(timeout=2)
        equity_leg = wire.leg(wire.PUT, "Sell to Open") | {
            "instrument-type": "Equity",
            "symbol": "SPY",
        }
        broker.last.push(PlacedOrder(**wire.order(1, legs=[equity_leg])))
        broker.last.push(PlacedOrder(**wire.order(2)))
        assert (await orders.get(1)).broker_order_id == "2"
        assert stream.state is StreamState.CONNECTED


def test_a_stream_needs_a_session_or_a_factory() -> None:
    with pytest.raises(ValueError, match="session"):
        MarketStream()
    with pytest.raises(ValueError, match="session"):
        AccountStream(wire.ACCOUNT)


def test_a_streamed_quote_becomes_the_contract_quote() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from libs.broker.models import StreamQuote
    from libs.contracts.market import Quote

    at = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)
    streamed = StreamQuote(
        symbol="QQQ   250620P00592000", bid=Decimal("4.10"), ask=Decimal("4.20"), quoted_at=at
    )
    quote = streamed.to_contract()
    assert quote == Quote(
        symbol="QQQ   250620P00592000", bid=Decimal("4.10"), ask=Decimal("4.20"), quoted_at=at
    )
    assert quote.mid == Decimal("4.15")
