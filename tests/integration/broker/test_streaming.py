"""Streams through the real SDK against the simulator's DXLink and account websockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any
from uuid import uuid4

import httpx2
import pytest
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import (
    BrokerCredentials,
    BrokerOrder,
    DailyCandle,
    StreamState,
)
from libs.broker.settings import BrokerSettings
from libs.broker.streaming import AccountStream, MarketStream, Subscription
from libs.contracts.execution import OrderAction, OrderLeg, OrderStatus, TimeInForce
from libs.contracts.symbols import OccSymbol
from libs.domain.orders import OrderRequest, client_tag_for
from libs.runtime.settings import TradingMode
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from services.simulator.server import SimulatorServer

ACCOUNT = DEFAULT_ACCOUNT_NUMBER
CREDENTIALS = BrokerCredentials(
    client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
    refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
)
CENT = Decimal("0.01")
WAIT = 10.0  # real seconds any one expected item may take


@pytest.fixture
async def adapter(simulator: SimulatorServer) -> AsyncIterator[BrokerAdapter]:
    settings = BrokerSettings(
        mode=TradingMode.PAPER, simulator_url=simulator.url, request_timeout_s=5
    )
    async with BrokerAdapter(settings, StaticCredentials({ACCOUNT: CREDENTIALS})) as adapter:
        yield adapter


@pytest.fixture
async def market(adapter: BrokerAdapter) -> AsyncIterator[MarketStream]:
    async with MarketStream(await adapter.session_for(ACCOUNT)) as stream:
        yield stream


@pytest.fixture
async def account(adapter: BrokerAdapter) -> AsyncIterator[AccountStream]:
    async with AccountStream(ACCOUNT, await adapter.session_for(ACCOUNT)) as stream:
        yield stream


async def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    async with httpx2.AsyncClient(base_url=server.url, trust_env=False) as client:
        response = await client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


async def put_spread(
    adapter: BrokerAdapter, server: SimulatorServer, underlying: str = "QQQ"
) -> tuple[OccSymbol, OccSymbol, Decimal]:
    """A 5-wide put spread near the money ~40 DTE, and its mid credit."""
    chain = await adapter.get_option_chain(ACCOUNT, underlying)
    expiration = min(chain.expirations, key=lambda e: abs(e.days_to_expiration - 40))
    spot = Decimal((await control(server, "GET", f"/sim/prices/{underlying}"))["price"])
    by_strike = {s.strike: s for s in expiration.strikes}
    short = min(by_strike, key=lambda k: abs(k - spot))
    long = short - 5
    assert long in by_strike
    short_q = await control(server, "GET", f"/sim/quotes/{by_strike[short].put}")
    long_q = await control(server, "GET", f"/sim/quotes/{by_strike[long].put}")
    mid = Decimal(short_q["mid"]) - Decimal(long_q["mid"])
    return by_strike[short].put, by_strike[long].put, mid


def opening(short: OccSymbol, long: OccSymbol, price: Decimal) -> OrderRequest:
    return OrderRequest(
        underlying=short.root,
        legs=(
            OrderLeg(symbol=short, action=OrderAction.SELL_TO_OPEN, quantity=1),
            OrderLeg(symbol=long, action=OrderAction.BUY_TO_OPEN, quantity=1),
        ),
        limit_price=price.quantize(CENT, rounding=ROUND_DOWN),
        time_in_force=TimeInForce.DAY,
        client_tag=client_tag_for(uuid4()),
    )


async def order_update(
    orders: Subscription[BrokerOrder], order_id: str, status: OrderStatus
) -> BrokerOrder:
    """The first notification of ``order_id`` in ``status``."""
    async with asyncio.timeout(WAIT):
        async for order in orders:
            if order.broker_order_id == order_id and order.status is status:
                return order
    raise AssertionError("the order subscription ended")


async def drain(subscription: Subscription[Any]) -> None:
    while True:
        try:
            await subscription.get(0.3)
        except TimeoutError:
            return


async def reconnected(*streams: MarketStream | AccountStream) -> None:
    for _ in range(int(WAIT / 0.05)):
        if all(s.health().reconnects >= 1 and s.state is StreamState.CONNECTED for s in streams):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reconnected: {[s.health() for s in streams]}")


async def test_quotes_and_greeks_for_an_underlying_and_an_option(
    adapter: BrokerAdapter, simulator: SimulatorServer, market: MarketStream
) -> None:
    short, _, _ = await put_spread(adapter, simulator)
    quotes = market.quotes(["QQQ", short])
    greeks = market.greeks([short])
    got: dict[str, Any] = {}
    async with asyncio.timeout(WAIT):
        while len(got) < 2:
            quote = await quotes.get()
            got[quote.symbol] = quote
    assert set(got) == {"QQQ", short}
    assert 0 < got["QQQ"].bid <= got["QQQ"].ask
    assert isinstance(got[short].bid, Decimal)
    assert got[short].ask >= got[short].bid >= 0
    option_greeks = await greeks.get(WAIT)
    assert option_greeks.symbol == short
    assert -1 < option_greeks.delta < 0  # a put
    assert option_greeks.volatility > 0
    assert market.health().state is StreamState.CONNECTED
    assert market.health().subscriptions == 3


async def test_250_daily_candles(simulator: SimulatorServer, market: MarketStream) -> None:
    sim_now = datetime.fromisoformat((await control(simulator, "GET", "/sim/clock"))["now"])
    start = sim_now - timedelta(days=400)
    candles = market.daily_candles("QQQ", start)
    days: dict[date, DailyCandle] = {}
    async with asyncio.timeout(WAIT):
        while len(days) < 250:
            candle = await candles.get()
            days[candle.day] = candle
    assert all(c.symbol == "QQQ" for c in days.values())
    assert all(
        0 < c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in days.values()
    )
    assert min(days) >= start.date()
    assert max(days) <= sim_now.date()


async def test_a_fill_arrives_with_leg_prices_then_a_balance_update(
    adapter: BrokerAdapter, simulator: SimulatorServer, account: AccountStream
) -> None:
    orders, balances = account.orders(), account.balances()
    await account.wait_connected(WAIT)
    short, long, mid = await put_spread(adapter, simulator)
    placed = await adapter.place_order(ACCOUNT, opening(short, long, mid))
    filled = await order_update(orders, placed.broker_order_id, OrderStatus.FILLED)
    assert filled.client_tag == placed.client_tag
    prices = {f.symbol: f.fill_price for f in filled.fills}
    assert set(prices) == {short, long}
    assert all(p > 0 for p in prices.values())
    balance = await balances.get(WAIT)
    assert balance.account_number == ACCOUNT
    assert balance.derivative_buying_power > 0


async def test_both_streams_resume_after_the_simulator_drops_their_sockets(
    adapter: BrokerAdapter,
    simulator: SimulatorServer,
    market: MarketStream,
    account: AccountStream,
) -> None:
    short, long, mid = await put_spread(adapter, simulator)
    quotes = market.quotes(["QQQ"])
    orders = account.orders()
    await quotes.get(WAIT)
    await account.wait_connected(WAIT)
    dropped = await control(simulator, "POST", "/sim/sockets/drop", {"kind": "all"})
    assert dropped["dropped"] >= 2
    await drain(quotes)
    await reconnected(market, account)
    # Quotes again (the re-subscription's snapshot), each symbol subscribed once.
    assert (await quotes.get(WAIT)).symbol == "QQQ"
    assert market.health().subscriptions == 1
    # Order notifications again: a resting order shows up live.
    placed = await adapter.place_order(ACCOUNT, opening(short, long, mid + 2))
    live = await order_update(orders, placed.broker_order_id, OrderStatus.WORKING)
    assert live.limit_price == placed.limit_price
    health = account.health()
    assert health.reconnects >= 1
    assert health.last_error_kind is not None
