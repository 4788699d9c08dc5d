"""The real SDK's AlertStreamer against the simulator's account streamer websocket."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import TypeVar

import pytest
from httpx2.websockets import WebSocketDisconnect
from tastytrade import Account, AlertStreamer, Session
from tastytrade.account import AccountBalance, CurrentPosition
from tastytrade.order import OrderStatus, PlacedOrder
from tastytrade.utils import TastytradeError
from typer.testing import CliRunner

from libs.cli.main import app
from services.simulator.server import SimulatorServer
from tests.integration.simulator.test_sdk_against_simulator import (
    control,
    natural_and_mid,
    put_spread,
    spread_order,
)
from tests.simulator_fixtures import sdk_session

WAIT = 10
T = TypeVar("T", PlacedOrder, AccountBalance, CurrentPosition)


async def next_alert(streamer: AlertStreamer, kind: type[T], timeout: float = WAIT) -> T:
    """The next notification of ``kind`` (bounded wait)."""
    return await asyncio.wait_for(anext(streamer.listen(kind)), timeout)


async def order_with_status(streamer: AlertStreamer, status: OrderStatus) -> PlacedOrder:
    """Skip Order notifications until one has ``status``."""
    while True:
        order = await next_alert(streamer, PlacedOrder)
        if order.status == status:
            return order


async def test_filled_order_then_balance_and_positions(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    natural, _ = natural_and_mid(simulator, short, long)
    async with AlertStreamer(session) as streamer:
        await streamer.subscribe_accounts([account])
        placed = await account.place_order(
            session, spread_order(short, long, str(natural), external_identifier="n-1"), False
        )
        assert placed.order.status == OrderStatus.FILLED
        filled = await order_with_status(streamer, OrderStatus.FILLED)
        balance = await next_alert(streamer, AccountBalance)
        positions = {
            p.symbol: p
            for p in [
                await next_alert(streamer, CurrentPosition),
                await next_alert(streamer, CurrentPosition),
            ]
        }
    assert filled.id == placed.order.id
    assert filled.external_identifier == "n-1"
    assert all(leg.fills for leg in filled.legs)
    fills = {leg.symbol: leg.fills[0] for leg in filled.legs if leg.fills}
    assert fills[short].fill_price - fills[long].fill_price == natural
    assert fills[short].quantity == 1
    assert balance.account_number == "5WT00001"
    assert balance.cash_balance == Decimal("100000") + natural * 100
    assert positions[short].quantity_direction == "Short"
    assert positions[long].quantity_direction == "Long"


async def test_live_then_cancelled(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    async with AlertStreamer(session) as streamer:
        await streamer.subscribe_accounts([account])
        placed = await account.place_order(
            session, spread_order(short, long, "25.00", external_identifier="rest-1"), False
        )
        live = await order_with_status(streamer, OrderStatus.LIVE)
        assert live.id == placed.order.id
        assert live.external_identifier == "rest-1"
        await account.delete_order(session, placed.order.id)
        cancelled = await order_with_status(streamer, OrderStatus.CANCELLED)
    assert cancelled.id == placed.order.id


async def test_rejected_order_is_notified(simulator: SimulatorServer) -> None:
    control(simulator, "POST", "/sim/faults", {"kind": "reject", "reason": "no"})
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    async with AlertStreamer(session) as streamer:
        await streamer.subscribe_accounts([account])
        placed = await account.place_order(session, spread_order(short, long, "1.00"), False)
        rejected = await order_with_status(streamer, OrderStatus.REJECTED)
    assert rejected.id == placed.order.id


async def test_customers_see_only_their_own_accounts(simulator: SimulatorServer) -> None:
    other = await asyncio.to_thread(control, simulator, "POST", "/sim/customers", {"name": "B"})
    other_session = sdk_session(simulator, other["client-secret"], other["refresh-token"])
    other_account = await Account.get(other_session, other["accounts"][0])
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    natural, _ = natural_and_mid(simulator, short, long)
    async with AlertStreamer(other_session) as streamer:
        await streamer.subscribe_accounts([other_account])
        await account.place_order(session, spread_order(short, long, str(natural)), False)
        with pytest.raises(TimeoutError):
            await next_alert(streamer, PlacedOrder, timeout=1.0)
        assert streamer.session is other_session
    # Subscribing to somebody else's account is refused.
    with pytest.raises(ExceptionGroup) as raised:
        await subscribe(other_session, account)
    assert raised.group_contains(TastytradeError, match="not authorized")


async def subscribe(session: Session, account: Account) -> None:
    """Open an account streamer and subscribe to ``account``."""
    async with AlertStreamer(session) as streamer:
        await streamer.subscribe_accounts([account])


async def stream_until_dropped(server: SimulatorServer) -> None:
    """Subscribe, drop the account sockets, then wait (the drop must end the stream)."""
    session = sdk_session(server)
    account = await Account.get(session, "5WT00001")
    async with AlertStreamer(session) as streamer:
        await streamer.subscribe_accounts([account])
        dropped = await asyncio.to_thread(
            control, server, "POST", "/sim/sockets/drop", {"kind": "account"}
        )
        assert dropped["dropped"] == 1
        await asyncio.sleep(WAIT)


async def test_dropping_the_socket_ends_the_stream(simulator: SimulatorServer) -> None:
    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(stream_until_dropped(simulator), WAIT / 2)
    assert raised.group_contains(WebSocketDisconnect)


async def test_drop_all_counts_both_kinds(simulator: SimulatorServer) -> None:
    assert control(simulator, "GET", "/sim/sockets") == {"dxlink": 0, "account": 0}
    assert control(simulator, "POST", "/sim/sockets/drop", {"kind": "all"})["dropped"] == 0


def test_cli_drop_sockets(simulator: SimulatorServer) -> None:
    port = str(simulator.port)
    result = CliRunner().invoke(app, ["sim", "drop-sockets", "dxlink", "--port", port])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"kind": "dxlink", "dropped": 0}
    bad = CliRunner().invoke(app, ["sim", "drop-sockets", "everything", "--port", port])
    assert bad.exit_code == 1
