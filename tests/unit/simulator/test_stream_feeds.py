"""DXLink feed building and the broker -> account-streamer hub, without sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.simulator import chains, dxlink
from services.simulator.broker import Broker, BrokerEvent
from services.simulator.clock import SimClock
from services.simulator.notifications import AccountSubscriber, StreamHub
from services.simulator.settings import SimSettings
from services.simulator.store import PositionRow, Store

T = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)  # 11:00 New York, a Tuesday


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    store = Store(tmp_path / "sim.sqlite3")
    try:
        yield Broker(store, SimClock(T, 0.0), SimSettings(data_dir=tmp_path))
    finally:
        store.close()


@pytest.mark.parametrize("strike", [Decimal("592"), Decimal("502.5"), Decimal("1")])
@pytest.mark.parametrize("is_call", [True, False])
def test_streamer_symbols_round_trip(strike: Decimal, is_call: bool) -> None:
    option = chains.OptionSymbol("QQQ", date(2025, 6, 20), is_call, strike)
    assert dxlink.parse_streamer_option(option.streamer) == option


@pytest.mark.parametrize("symbol", ["QQQ", ".QQQ", ".QQQ259999P5", ".QQQ250620X5", ".Q250620P0"])
def test_not_streamer_options(symbol: str) -> None:
    assert dxlink.parse_streamer_option(symbol) is None


def test_quotes_and_greeks(broker: Broker) -> None:
    quote = dxlink.quote_event(broker, "SPY", T)
    assert quote is not None
    assert quote["askPrice"] - quote["bidPrice"] == pytest.approx(0.02)
    assert dxlink.quote_event(broker, "NOPE", T) is None
    call = dxlink.greeks_event(broker, ".SPY250620C600", T)
    put = dxlink.greeks_event(broker, ".SPY250620P600", T)
    assert call is not None
    assert put is not None
    assert 0 < call["delta"] < 1
    assert -1 < put["delta"] < 0
    assert call["delta"] - put["delta"] == pytest.approx(1, abs=0.01)
    assert dxlink.greeks_event(broker, "SPY", T) is None
    expired = dxlink.greeks_event(broker, ".SPY250530C500", T)
    assert expired is not None
    assert expired["delta"] == 1.0
    assert expired["gamma"] == 0.0


def test_daily_candles(broker: Broker) -> None:
    everything = dxlink.candle_events(broker, "SPY{=1d}", 0, T)
    assert len(everything) == dxlink.MAX_DAILY_CANDLES + 1  # + today's, in progress
    year = dxlink.candle_events(
        broker, "SPY{=1d,tho=true}", int(T.timestamp() * 1000) - 365 * 86400000, T
    )
    assert 249 <= len(year) <= 253
    assert all(c["eventSymbol"] == "SPY{=1d,tho=true}" for c in year)
    closes = [c["close"] for c in year]
    assert [c["open"] for c in year[1:]] == closes[:-1]
    assert dxlink.candle_events(broker, "SPY{=5m}", 0, T) == []
    assert dxlink.candle_events(broker, "NOPE{=1d}", 0, T) == []


class FakeSocket:
    """Stands in for the websocket: the tests read the session's outbox instead."""


def frames(session: dxlink.DXLinkSession) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while not session._outbox.empty():
        item = session._outbox.get_nowait()
        assert isinstance(item, str)
        out.append(orjson.loads(item))
    return out


def test_dxlink_handshake_and_chunked_candles(broker: Broker) -> None:
    hub = StreamHub(broker)
    token = hub.issue_quote_token(1)
    session = dxlink.DXLinkSession(FakeSocket(), hub)  # type: ignore[arg-type]
    session.handle({"type": "SETUP", "channel": 0})
    assert [f["type"] for f in frames(session)] == ["SETUP", "AUTH_STATE"]
    session.handle({"type": "CHANNEL_REQUEST", "channel": 1})
    assert frames(session)[0]["type"] == "ERROR"
    session.handle({"type": "AUTH", "channel": 0, "token": "wrong"})
    assert frames(session)[0]["type"] == "ERROR"
    session.handle({"type": "AUTH", "channel": 0, "token": token})
    assert frames(session)[0]["state"] == "AUTHORIZED"
    session.handle({"type": "CHANNEL_REQUEST", "channel": 1, "service": "FEED"})
    session.handle({"type": "FEED_SETUP", "channel": 1, "acceptEventFields": dxlink.DEFAULT_FIELDS})
    assert [f["type"] for f in frames(session)] == ["CHANNEL_OPENED", "FEED_CONFIG"]
    session.handle(
        {
            "type": "FEED_SUBSCRIPTION",
            "channel": 1,
            "add": [{"type": "Candle", "symbol": "SPY{=1d}", "fromTime": 0}],
        }
    )
    sent = [(f, len(orjson.dumps(f))) for f in frames(session)]
    assert len(sent) > 1
    assert all(size < 65_536 for _, size in sent)
    width = len(dxlink.DEFAULT_FIELDS["Candle"])
    assert sum(len(f["data"][1]) for f, _ in sent) == width * (dxlink.MAX_DAILY_CANDLES + 1)
    session.handle({"type": "CHANNEL_CANCEL", "channel": 1})
    assert frames(session) == [{"type": "CHANNEL_CLOSED", "channel": 1}]


def test_quotes_pushed_only_on_change(broker: Broker) -> None:
    hub = StreamHub(broker)
    session = dxlink.DXLinkSession(FakeSocket(), hub)  # type: ignore[arg-type]
    session.authorized = True
    session.handle({"type": "CHANNEL_REQUEST", "channel": 7})
    session.handle(
        {"type": "FEED_SUBSCRIPTION", "channel": 7, "add": [{"type": "Quote", "symbol": "SPY"}]}
    )
    assert [f["type"] for f in frames(session)] == ["CHANNEL_OPENED", "FEED_DATA"]
    session.push()
    assert frames(session) == []
    broker.sim_clock.set(datetime(2025, 6, 3, 17, 0, tzinfo=UTC))
    session.push()
    assert [f["type"] for f in frames(session)] == ["FEED_DATA"]


async def test_hub_filters_by_account_and_dedupes_orders(broker: Broker) -> None:
    hub = StreamHub(broker)
    hub.bind_loop()
    mine: list[bytes] = []
    theirs: list[bytes] = []
    hub.subscribe(AccountSubscriber({"5WT00001"}, mine.append))
    hub.subscribe(AccountSubscriber({"5WT00002"}, theirs.append))
    order = {"id": 1, "account-number": "5WT00001", "status": "Live"}
    broker.emit(BrokerEvent("order", "5WT00001", order=order))
    broker.emit(BrokerEvent("order", "5WT00001", order=dict(order)))
    broker.emit(BrokerEvent("balance", "5WT00001"))
    broker.emit(BrokerEvent("position", "5WT00001", symbol="SPY   250620P00600000"))
    await asyncio.sleep(0)
    decoded = [orjson.loads(m) for m in mine]
    assert [m["type"] for m in decoded] == ["Order", "AccountBalance", "CurrentPosition"]
    assert decoded[2]["data"]["quantity-direction"] == "Zero"
    assert theirs == []


async def test_hub_sends_open_positions(broker: Broker) -> None:
    hub = StreamHub(broker)
    hub.bind_loop()
    got: list[bytes] = []
    hub.subscribe(AccountSubscriber({"5WT00001"}, got.append))
    broker.store.put_position(
        PositionRow("5WT00001", "SPY   250620P00600000", -2, Decimal("5.10"), T, T)
    )
    broker.emit(BrokerEvent("position", "5WT00001", symbol="SPY   250620P00600000"))
    data = orjson.loads(got[0])["data"]
    assert data["quantity"] == 2
    assert data["quantity-direction"] == "Short"
