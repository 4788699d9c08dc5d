"""Both streamers stay up through 90 s of silence (TASTYTRADE_PROTOCOL.md §9 check 15).

Slow (about 95 s of real idle time, both streamers idle together), but it is the only
proof of the idle rule, so it runs with the rest.
"""

from __future__ import annotations

import asyncio

from tastytrade import Account, AlertStreamer, DXLinkStreamer
from tastytrade.dxfeed import Quote
from tastytrade.order import OrderStatus, PlacedOrder

from services.simulator.server import SimulatorServer
from tests.integration.simulator.test_sdk_against_simulator import put_spread, spread_order
from tests.simulator_fixtures import sdk_session

IDLE_SECONDS = 95


async def dxlink_after_idle(server: SimulatorServer) -> None:
    async with DXLinkStreamer(sdk_session(server)) as streamer:
        await asyncio.sleep(IDLE_SECONDS)
        await streamer.subscribe(Quote, ["QQQ"])
        quote = await asyncio.wait_for(streamer.get_event(Quote), 10)
        assert quote.event_symbol == "QQQ"


async def account_streamer_after_idle(server: SimulatorServer) -> None:
    session = sdk_session(server)
    account = await Account.get(session, "5WT00001")
    async with AlertStreamer(session) as streamer:
        await streamer.subscribe_accounts([account])
        await asyncio.sleep(IDLE_SECONDS)
        short, long = await put_spread(session)
        placed = await account.place_order(session, spread_order(short, long, "25.00"), False)
        order = await asyncio.wait_for(anext(streamer.listen(PlacedOrder)), 10)
        assert order.id == placed.order.id
        assert order.status == OrderStatus.LIVE


async def test_both_streamers_survive_idle(simulator: SimulatorServer) -> None:
    await asyncio.wait_for(
        asyncio.gather(dxlink_after_idle(simulator), account_streamer_after_idle(simulator)),
        IDLE_SECONDS + 30,
    )
