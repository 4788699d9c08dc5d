"""Closing legs (Buy to Close / Sell to Close) never open a position.

At placement and dry-run a closing leg bigger than the position it closes is refused
(422 ``insufficient_position``); at fill time a closing order whose position is gone,
e.g. closed externally while the order rested, is Rejected with a reason instead of
filled. Every test freezes the clock and pins SPY, so quotes move only when a test moves
the price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tastytrade import Account, Session
from tastytrade.order import (
    InstrumentType,
    Leg,
    LimitOrder,
    OrderAction,
    OrderStatus,
    OrderTimeInForce,
)
from tastytrade.utils import TastytradeError

from services.simulator.server import SimulatorServer
from tests.integration.simulator.test_sdk_against_simulator import (
    control,
    natural_and_mid,
    put_spread,
    quotes,
    spread_order,
)
from tests.integration.simulator.test_sessions_and_expiry import pin_spy
from tests.simulator_fixtures import sdk_session

ACCOUNT = "5WT00001"
CLOSE = f"/sim/accounts/{ACCOUNT}/positions/close"
CENT = Decimal("0.01")


def closing_order(short: str, long: str, debit: Decimal, qty: int = 2, **kw: Any) -> LimitOrder:
    """Buy back the short put and sell the long put for ``debit`` per spread."""
    legs = [
        Leg(
            instrument_type=InstrumentType.EQUITY_OPTION,
            symbol=short,
            action=OrderAction.BUY_TO_CLOSE,
            quantity=qty,
        ),
        Leg(
            instrument_type=InstrumentType.EQUITY_OPTION,
            symbol=long,
            action=OrderAction.SELL_TO_CLOSE,
            quantity=qty,
        ),
    ]
    return LimitOrder(legs=legs, price=-debit, **kw)


def closing_natural_and_mid(
    server: SimulatorServer, short: str, long: str
) -> tuple[Decimal, Decimal]:
    """(natural, mid) debit of buying the spread back."""
    s, lg = quotes(server, short, long)
    return Decimal(s["ask"]) - Decimal(lg["bid"]), Decimal(s["mid"]) - Decimal(lg["mid"])


async def open_spread(server: SimulatorServer, qty: int = 2) -> tuple[Session, Account, str, str]:
    """A frozen clock, a pinned SPY and ``qty`` put credit spreads filled at the natural."""
    control(server, "PUT", "/sim/clock", {"speed": 0})
    pin_spy(server, Decimal("600.00"))
    session = sdk_session(server)
    account = await Account.get(session, ACCOUNT)
    short, long = await put_spread(session)
    natural, _ = natural_and_mid(server, short, long)
    opened = await account.place_order(
        session, spread_order(short, long, str(natural), qty=qty), dry_run=False
    )
    assert opened.order.status == OrderStatus.FILLED
    return session, account, short, long


async def positions(session: Session, account: Account) -> dict[str, tuple[int, str]]:
    return {
        p.symbol: (int(p.quantity), p.quantity_direction)
        for p in await account.get_positions(session)
    }


async def resting_close(
    server: SimulatorServer, session: Session, account: Account, short: str, long: str
) -> int:
    """A GTC closing order bidding 0.30 under the mid debit: it rests."""
    _, mid = closing_natural_and_mid(server, short, long)
    debit = (mid - Decimal("0.30")).quantize(CENT)
    assert debit > 0
    placed = await account.place_order(
        session,
        closing_order(short, long, debit, time_in_force=OrderTimeInForce.GTC),
        dry_run=False,
    )
    assert placed.order.status == OrderStatus.LIVE
    return placed.order.id


def rally(server: SimulatorServer) -> None:
    """SPY up 15: the puts cheapen and any resting closing debit becomes marketable."""
    pin_spy(server, Decimal("615.00"))


async def test_position_closed_externally_rejects_the_working_closing_order(
    simulator: SimulatorServer,
) -> None:
    session, account, short, long = await open_spread(simulator)
    order_id = await resting_close(simulator, session, account, short, long)
    cash = (await account.get_balances(session)).cash_balance

    control(simulator, "POST", CLOSE, {"symbol": short})
    control(simulator, "POST", CLOSE, {"symbol": long})
    assert await positions(session, account) == {}
    cash_after_external = (await account.get_balances(session)).cash_balance
    assert cash_after_external != cash

    rally(simulator)  # the market moves through the limit
    order = await account.get_order(session, order_id)
    assert order.status == OrderStatus.REJECTED
    assert order.reject_reason is not None
    assert "position to close is gone" in order.reject_reason
    assert all(not leg.fills for leg in order.legs)
    assert await positions(session, account) == {}  # no new long/short opened
    assert (await account.get_balances(session)).cash_balance == cash_after_external
    assert await account.get_live_orders(session) == []


async def test_one_leg_closed_externally_rejects_the_whole_closing_order(
    simulator: SimulatorServer,
) -> None:
    session, account, short, long = await open_spread(simulator)
    order_id = await resting_close(simulator, session, account, short, long)

    control(simulator, "POST", CLOSE, {"symbol": short, "quantity": 1})  # 1 of 2 left
    rally(simulator)
    order = await account.get_order(session, order_id)
    assert order.status == OrderStatus.REJECTED
    assert all(not leg.fills for leg in order.legs)  # no leg filled, not even the long
    assert await positions(session, account) == {short: (1, "Short"), long: (2, "Long")}


async def test_second_working_closing_order_cannot_reopen_after_the_first_fills(
    simulator: SimulatorServer,
) -> None:
    session, account, short, long = await open_spread(simulator)
    first = await resting_close(simulator, session, account, short, long)
    second = await resting_close(simulator, session, account, short, long)

    rally(simulator)
    statuses = {
        first: (await account.get_order(session, first)).status,
        second: (await account.get_order(session, second)).status,
    }
    assert sorted(statuses.values()) == [OrderStatus.FILLED, OrderStatus.REJECTED]
    assert await positions(session, account) == {}


async def test_normal_closing_order_fills_and_flattens(simulator: SimulatorServer) -> None:
    session, account, short, long = await open_spread(simulator)
    natural, _ = closing_natural_and_mid(simulator, short, long)
    placed = await account.place_order(
        session, closing_order(short, long, natural.quantize(CENT)), dry_run=False
    )
    assert placed.order.status == OrderStatus.FILLED
    assert await positions(session, account) == {}


async def test_resting_closing_order_fills_when_the_market_reaches_it(
    simulator: SimulatorServer,
) -> None:
    session, account, short, long = await open_spread(simulator)
    order_id = await resting_close(simulator, session, account, short, long)
    rally(simulator)
    order = await account.get_order(session, order_id)
    assert order.status == OrderStatus.FILLED
    assert await positions(session, account) == {}


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "place"])
async def test_closing_order_without_a_position_is_refused(
    simulator: SimulatorServer, dry_run: bool
) -> None:
    control(simulator, "PUT", "/sim/clock", {"speed": 0})
    pin_spy(simulator, Decimal("600.00"))
    session = sdk_session(simulator)
    account = await Account.get(session, ACCOUNT)
    short, long = await put_spread(session)
    order = closing_order(short, long, Decimal("1.00"))
    placing = (
        account.place_order(session, order)
        if dry_run
        else account.place_order(session, order, dry_run=False)
    )
    with pytest.raises(TastytradeError, match="insufficient_position"):
        await placing
    assert await account.get_live_orders(session) == []
    assert await positions(session, account) == {}


@pytest.mark.parametrize(
    ("action_on", "qty"),
    [
        pytest.param("short", 3, id="bigger-than-the-short"),
        pytest.param("long", 3, id="bigger-than-the-long"),
    ],
)
async def test_closing_leg_bigger_than_the_position_is_refused(
    simulator: SimulatorServer, action_on: str, qty: int
) -> None:
    session, account, short, long = await open_spread(simulator, qty=2)
    symbol, action = (
        (short, OrderAction.BUY_TO_CLOSE)
        if action_on == "short"
        else (long, OrderAction.SELL_TO_CLOSE)
    )
    order = LimitOrder(
        legs=[
            Leg(
                instrument_type=InstrumentType.EQUITY_OPTION,
                symbol=symbol,
                action=action,
                quantity=qty,
            )
        ],
        price=Decimal("-0.01") if action_on == "short" else Decimal("0.01"),
    )
    with pytest.raises(TastytradeError, match="insufficient_position"):
        await account.place_order(session, order, dry_run=False)
    assert await positions(session, account) == {short: (2, "Short"), long: (2, "Long")}


@pytest.mark.parametrize(
    ("leg_of", "action"),
    [
        pytest.param("long", OrderAction.BUY_TO_CLOSE, id="buy-to-close-a-long"),
        pytest.param("short", OrderAction.SELL_TO_CLOSE, id="sell-to-close-a-short"),
    ],
)
async def test_closing_the_wrong_direction_is_refused(
    simulator: SimulatorServer, leg_of: str, action: OrderAction
) -> None:
    session, account, short, long = await open_spread(simulator, qty=1)
    order = LimitOrder(
        legs=[
            Leg(
                instrument_type=InstrumentType.EQUITY_OPTION,
                symbol=long if leg_of == "long" else short,
                action=action,
                quantity=1,
            )
        ],
        price=Decimal("-0.01") if action == OrderAction.BUY_TO_CLOSE else Decimal("0.01"),
    )
    with pytest.raises(TastytradeError, match="insufficient_position"):
        await account.place_order(session, order, dry_run=False)
