"""Simulated time against orders and positions: the session close, the open, expiration.

Every test freezes the clock (speed 0) and pins SPY's price, so quotes only change when a
test moves the clock or the price: no wall-clock dependence.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from tastytrade import Account, Session
from tastytrade.instruments import NestedOptionChain
from tastytrade.order import OrderStatus, OrderTimeInForce

from services.simulator.server import SimulatorServer
from tests.integration.simulator.test_sdk_against_simulator import (
    control,
    natural_and_mid,
    put_spread,
    spread_order,
)
from tests.simulator_fixtures import sdk_session

ACCOUNT = "5WT00001"


@contextmanager
def simulator_at(start: str) -> Iterator[SimulatorServer]:
    """A fresh simulator whose clock starts at ``start`` (ISO-8601 with offset)."""
    with tempfile.TemporaryDirectory(prefix="senex-sim-") as tmp:
        server = SimulatorServer(Path(tmp), start=datetime.fromisoformat(start), seed=7)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def freeze_at(server: SimulatorServer, instant: str) -> dict[str, object]:
    """Jump the simulated clock to ``instant`` and stop it there (runs a sweep)."""
    answer: dict[str, object] = control(server, "PUT", "/sim/clock", {"time": instant, "speed": 0})
    return answer


def pin_spy(server: SimulatorServer, price: Decimal | None = None) -> Decimal:
    """Hold SPY at ``price`` (default: where it is now); returns the held price."""
    if price is None:
        price = Decimal(control(server, "GET", "/sim/prices/SPY")["price"])
    control(server, "PUT", "/sim/prices/SPY", {"price": str(price)})
    return price


async def status_of(session: Session, account: Account, order_id: int) -> OrderStatus:
    return (await account.get_order(session, order_id)).status


async def resting_orders(
    server: SimulatorServer, session: Session, account: Account
) -> tuple[int, int]:
    """(DAY id, GTC id): two credit spreads asking a dollar over the mid, so they rest."""
    short, long = await put_spread(session)
    _, mid = natural_and_mid(server, short, long)
    far = str((mid + 1).quantize(Decimal("0.01")))
    day = await account.place_order(session, spread_order(short, long, far), dry_run=False)
    gtc = await account.place_order(
        session,
        spread_order(short, long, far, time_in_force=OrderTimeInForce.GTC),
        dry_run=False,
    )
    assert day.order.status == gtc.order.status == OrderStatus.LIVE
    assert day.order.time_in_force == OrderTimeInForce.DAY
    return day.order.id, gtc.order.id


# the session close


async def test_day_order_expires_at_the_close_and_gtc_order_persists(
    simulator: SimulatorServer,
) -> None:
    freeze_at(simulator, "2025-06-03T15:30:00-04:00")
    pin_spy(simulator)
    session = sdk_session(simulator)
    account = await Account.get(session, ACCOUNT)
    day, gtc = await resting_orders(simulator, session, account)

    freeze_at(simulator, "2025-06-03T15:59:59-04:00")
    assert await status_of(session, account, day) == OrderStatus.LIVE

    assert freeze_at(simulator, "2025-06-03T16:00:00-04:00")["market-open"] is False
    assert await status_of(session, account, day) == OrderStatus.EXPIRED
    assert await status_of(session, account, gtc) == OrderStatus.LIVE

    freeze_at(simulator, "2025-06-04T11:00:00-04:00")  # the next session
    assert [o.id for o in await account.get_live_orders(session)] == [gtc]


async def test_day_order_expires_at_1pm_on_a_half_day() -> None:
    # The day after Thanksgiving 2025 closes at 13:00 New York.
    with simulator_at("2025-11-28T10:00:00-05:00") as server:
        freeze_at(server, "2025-11-28T10:00:00-05:00")
        pin_spy(server)
        session = sdk_session(server)
        account = await Account.get(session, ACCOUNT)
        day, gtc = await resting_orders(server, session, account)

        freeze_at(server, "2025-11-28T12:59:59-05:00")
        assert await status_of(session, account, day) == OrderStatus.LIVE

        assert freeze_at(server, "2025-11-28T13:00:00-05:00")["market-open"] is False
        assert await status_of(session, account, day) == OrderStatus.EXPIRED
        assert await status_of(session, account, gtc) == OrderStatus.LIVE


# orders placed outside market hours


@pytest.mark.parametrize(
    ("placed_at", "last_closed_instant", "opening"),
    [
        pytest.param(
            "2025-06-03T18:00:00-04:00",
            "2025-06-04T09:29:59-04:00",
            "2025-06-04T09:30:00-04:00",
            id="after-the-close",
        ),
        pytest.param(
            "2025-06-04T07:00:00-04:00",
            "2025-06-04T09:29:59-04:00",
            "2025-06-04T09:30:00-04:00",
            id="before-the-open",
        ),
        pytest.param(
            "2025-06-07T12:00:00-04:00",
            "2025-06-09T09:29:59-04:00",
            "2025-06-09T09:30:00-04:00",
            id="on-a-saturday",
        ),
    ],
)
@pytest.mark.parametrize("tif", [OrderTimeInForce.DAY, OrderTimeInForce.GTC])
async def test_marketable_order_placed_while_closed_rests_until_the_open_then_fills(
    simulator: SimulatorServer,
    placed_at: str,
    last_closed_instant: str,
    opening: str,
    tif: OrderTimeInForce,
) -> None:
    assert freeze_at(simulator, placed_at)["market-open"] is False
    pin_spy(simulator)
    session = sdk_session(simulator)
    account = await Account.get(session, ACCOUNT)
    short, long = await put_spread(session)
    natural, _ = natural_and_mid(simulator, short, long)
    # Half the natural credit: marketable now and still at the open, a night of decay later.
    limit = max((natural / 2).quantize(Decimal("0.01")), Decimal("0.01"))
    order = spread_order(short, long, str(limit), time_in_force=tif)

    dry_run = await account.place_order(session, order)
    assert "market_closed" in {w.code for w in dry_run.warnings or []}
    placed = await account.place_order(session, order, dry_run=False)
    assert placed.order.status == OrderStatus.LIVE
    assert await account.get_positions(session) == []

    freeze_at(simulator, last_closed_instant)
    assert await status_of(session, account, placed.order.id) == OrderStatus.LIVE

    assert freeze_at(simulator, opening)["market-open"] is True
    filled = await account.get_order(session, placed.order.id)
    assert filled.status == OrderStatus.FILLED
    leg_prices = {leg.symbol: leg.fills[0].fill_price for leg in filled.legs if leg.fills}
    assert leg_prices[short] - leg_prices[long] >= limit  # at the natural, never worse
    assert {p.symbol for p in await account.get_positions(session)} == {short, long}


# expiration


async def nearest_put_spread(session: Session, width: int = 3) -> tuple[str, str, Decimal]:
    """(short, long, short strike) of a put spread in the nearest expiration."""
    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    expiration = min(chain.expirations, key=lambda e: e.expiration_date)
    strikes = {s.strike_price: s for s in expiration.strikes}
    middle = sorted(strikes)[len(strikes) // 2]
    return strikes[middle].put, strikes[middle - width].put, middle


@pytest.mark.parametrize(
    ("settle_offset", "short_intrinsic", "long_intrinsic"),
    [
        pytest.param(Decimal("5"), Decimal("0"), Decimal("0"), id="above-both-strikes"),
        pytest.param(Decimal("-1.25"), Decimal("1.25"), Decimal("0"), id="between-the-strikes"),
        pytest.param(Decimal("-10"), Decimal("10"), Decimal("7"), id="below-both-strikes"),
    ],
)
async def test_options_held_through_expiration_settle_in_cash_at_intrinsic_value(
    simulator: SimulatorServer,
    settle_offset: Decimal,
    short_intrinsic: Decimal,
    long_intrinsic: Decimal,
) -> None:
    freeze_at(simulator, "2025-06-03T11:00:00-04:00")  # Tuesday; nearest expiry Friday 06-06
    pin_spy(simulator)
    session = sdk_session(simulator)
    account = await Account.get(session, ACCOUNT)
    short, long, short_strike = await nearest_put_spread(session)
    assert short.startswith("SPY   250606P")  # expires this Friday
    natural, _ = natural_and_mid(simulator, short, long)
    opened = await account.place_order(
        session, spread_order(short, long, str(natural), qty=2), dry_run=False
    )
    assert opened.order.status == OrderStatus.FILLED
    cash_after_open = (await account.get_balances(session)).cash_balance
    assert cash_after_open == Decimal("100000") + natural * 200

    pin_spy(simulator, short_strike + settle_offset)  # SPY's price at the Friday close
    freeze_at(simulator, "2025-06-06T15:59:59-04:00")
    assert len(await account.get_positions(session)) == 2  # still trading until the close

    freeze_at(simulator, "2025-06-09T10:00:00-04:00")  # the Monday after
    assert await account.get_positions(session) == []
    balances = await account.get_balances(session)
    # Two short puts pay their intrinsic value, two long puts collect theirs.
    settlement = (long_intrinsic - short_intrinsic) * 2 * 100
    assert balances.cash_balance == cash_after_open + settlement
    assert balances.net_liquidating_value == balances.cash_balance
    assert balances.derivative_buying_power == balances.cash_balance
    assert balances.maintenance_requirement == Decimal("0")
    assert await account.get_live_orders(session) == []
