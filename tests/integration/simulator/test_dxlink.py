"""The real SDK's DXLinkStreamer against the simulator's DXLink websocket."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from httpx2.websockets import WebSocketDisconnect
from tastytrade import DXLinkStreamer
from tastytrade.dxfeed import Candle, Greeks, Quote
from tastytrade.instruments import Option

from services.simulator.server import SimulatorServer
from tests.simulator_fixtures import SIM_START, sdk_session

OPTION_OCC = "QQQ   250620P00592000"
OPTION = ".QQQ250620P592"
WAIT = 10


def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """Call the /sim/ control API."""
    raw = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=raw, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def freeze(server: SimulatorServer) -> None:
    """Stop the simulated clock so prices hold still."""
    control(server, "PUT", "/sim/clock", {"speed": 0})


async def test_streamer_symbol_matches_sdk() -> None:
    assert Option.occ_to_streamer_symbol(OPTION_OCC) == OPTION


async def test_underlying_quote(simulator: SimulatorServer) -> None:
    freeze(simulator)
    expected = control(simulator, "GET", "/sim/prices/QQQ")
    async with DXLinkStreamer(sdk_session(simulator)) as streamer:
        await streamer.subscribe(Quote, ["QQQ", "SPY"])
        quotes: dict[str, Quote] = {}
        while len(quotes) < 2:
            quote = await asyncio.wait_for(streamer.get_event(Quote), WAIT)
            quotes[quote.event_symbol] = quote
    qqq = quotes["QQQ"]
    assert qqq.bid_price == Decimal(expected["bid"])
    assert qqq.ask_price == Decimal(expected["ask"])
    assert qqq.bid_size
    assert qqq.ask_size
    assert quotes["SPY"].bid_price < quotes["SPY"].ask_price


async def test_option_quote_and_greeks(simulator: SimulatorServer) -> None:
    freeze(simulator)
    expected = control(simulator, "GET", "/sim/quotes/" + OPTION_OCC.replace(" ", "%20"))
    async with DXLinkStreamer(sdk_session(simulator)) as streamer:
        await streamer.subscribe(Quote, [OPTION])
        await streamer.subscribe(Greeks, [OPTION])
        quote = await asyncio.wait_for(streamer.get_event(Quote), WAIT)
        greeks = await asyncio.wait_for(streamer.get_event(Greeks), WAIT)
    assert quote.event_symbol == OPTION
    assert quote.bid_price == Decimal(expected["bid"])
    assert quote.ask_price == Decimal(expected["ask"])
    assert greeks.event_symbol == OPTION
    assert -1 < greeks.delta < 0  # a put
    assert greeks.gamma > 0
    assert greeks.theta < 0
    assert greeks.vega > 0
    assert greeks.rho < 0
    assert abs(float(greeks.volatility) - expected["iv"]) < 1e-5
    assert abs(float(greeks.price) - float(expected["theo"])) < 1e-4


async def test_quotes_are_pushed_when_prices_move(simulator: SimulatorServer) -> None:
    freeze(simulator)
    async with DXLinkStreamer(sdk_session(simulator)) as streamer:
        await streamer.subscribe(Quote, ["SPY"])
        first = await asyncio.wait_for(streamer.get_event(Quote), WAIT)
        control(simulator, "PUT", "/sim/prices/SPY", {"price": "612.50"})
        second = await asyncio.wait_for(streamer.get_event(Quote), WAIT)
    assert first.bid_price != second.bid_price
    assert second.bid_price == Decimal("612.49")
    assert second.ask_price == Decimal("612.51")


async def test_daily_candles(simulator: SimulatorServer) -> None:
    freeze(simulator)
    start = SIM_START - timedelta(days=366)
    async with DXLinkStreamer(sdk_session(simulator)) as streamer:
        await streamer.subscribe_candle(["QQQ"], "1d", start_time=start)
        candles: list[Candle] = []
        while len(candles) < 250:
            candles.append(await asyncio.wait_for(streamer.get_event(Candle), WAIT))
        # Anything beyond the history arrives at once; collect it without waiting long.
        while (extra := streamer.get_event_nowait(Candle)) is not None:
            candles.append(extra)
    assert {c.event_symbol for c in candles} == {"QQQ{=1d,tho=true}"}
    times = [c.time for c in candles]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert min(times) >= start.timestamp() * 1000
    assert 250 <= len(candles) <= 253
    days = [datetime.fromtimestamp(t / 1000, SIM_START.tzinfo).date() for t in times]
    assert days[-1] == SIM_START.date()  # the session in progress comes last
    for candle in candles:
        assert candle.low <= min(candle.open, candle.close)
        assert candle.high >= max(candle.open, candle.close)


async def stream_until_dropped(server: SimulatorServer) -> None:
    """Stream quotes, drop the DXLink sockets, then wait (the drop must end the stream)."""
    async with DXLinkStreamer(sdk_session(server)) as streamer:
        await streamer.subscribe(Quote, ["SPY"])
        await asyncio.wait_for(streamer.get_event(Quote), WAIT)
        dropped = await asyncio.to_thread(
            control, server, "POST", "/sim/sockets/drop", {"kind": "dxlink"}
        )
        assert dropped["dropped"] == 1
        await asyncio.sleep(WAIT)


async def test_dropping_the_socket_ends_the_stream(simulator: SimulatorServer) -> None:
    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(stream_until_dropped(simulator), WAIT / 2)
    assert raised.group_contains(WebSocketDisconnect)
