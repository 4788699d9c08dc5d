"""State survives a restart: a new SimulatorServer on the same data dir resumes everything."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tastytrade import Account, Session
from tastytrade.order import OrderStatus, OrderTimeInForce

from services.simulator.server import SimulatorServer
from tests.integration.simulator.test_sdk_against_simulator import (
    control,
    natural_and_mid,
    put_spread,
    spread_order,
)
from tests.simulator_fixtures import SIM_START, sdk_session

ACCOUNT = "5WT00001"
FROZEN_AT = "2025-06-03T12:34:56.789000-04:00"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="senex-sim-restart-") as tmp:
        yield Path(tmp)


async def snapshot(session: Session) -> dict[str, Any]:
    """Everything the SDK can see of the default customer's account."""
    account = await Account.get(session, ACCOUNT)
    return {
        "accounts": [a.model_dump() for a in await Account.get(session)],
        "balances": (await account.get_balances(session)).model_dump(),
        "positions": [p.model_dump() for p in await account.get_positions(session)],
        "live": [o.model_dump() for o in await account.get_live_orders(session)],
        "history": [o.model_dump() for o in await account.get_order_history(session)],
    }


async def test_customers_accounts_positions_orders_and_clock_survive_a_restart(
    data_dir: Path,
) -> None:
    first = SimulatorServer(data_dir, start=SIM_START, seed=7)
    first.start()
    try:
        port = first.port
        control(first, "PUT", "/sim/clock", {"time": FROZEN_AT, "speed": 0})
        control(first, "PUT", "/sim/prices/SPY", {"price": "600.00"})
        control(first, "PUT", "/sim/config", {"fill-delay-seconds": 0})
        dana = control(first, "POST", "/sim/customers", {"name": "Dana", "accounts": 2})
        session = sdk_session(first)
        account = await Account.get(session, ACCOUNT)
        short, long = await put_spread(session)
        natural, mid = natural_and_mid(first, short, long)
        opened = await account.place_order(
            session, spread_order(short, long, str(natural), qty=2), dry_run=False
        )
        assert opened.order.status == OrderStatus.FILLED
        resting = await account.place_order(
            session,
            spread_order(
                short,
                long,
                str((mid + 1).quantize(Decimal("0.01"))),
                time_in_force=OrderTimeInForce.GTC,
                external_identifier="exit-1",
            ),
            dry_run=False,
        )
        assert resting.order.status == OrderStatus.LIVE
        before = await snapshot(session)
        customers_before = control(first, "GET", "/sim/customers")
    finally:
        first.stop()

    # Same data dir, same port, no start instant: the new server resumes the saved state.
    second = SimulatorServer(data_dir, port=port, seed=7)
    second.start()
    try:
        clock = control(second, "GET", "/sim/clock")
        assert clock["now"] == "2025-06-03T16:34:56.789Z"
        assert clock["speed"] == 0
        assert control(second, "GET", "/sim/prices/SPY")["price"] == "600.00"
        assert control(second, "PUT", "/sim/config", {})["fill-delay-seconds"] == 0
        assert control(second, "GET", "/sim/customers") == customers_before
        assert [c["name"] for c in customers_before] == ["Default", "Dana"]

        # The SDK session of before the restart still works: its token was persisted too.
        after = await snapshot(session)
        assert after == before
        assert len(after["positions"]) == 2
        assert [o["external_identifier"] for o in after["live"]] == ["exit-1"]

        dana_session = sdk_session(second, dana["client-secret"], dana["refresh-token"])
        dana_accounts = await Account.get(dana_session)
        assert [a.account_number for a in dana_accounts] == dana["accounts"]

        # The resting order is still a working order after the restart.
        account = await Account.get(session, ACCOUNT)
        await account.delete_order(session, resting.order.id)
        assert await account.get_live_orders(session) == []
    finally:
        second.stop()


async def test_a_restart_given_a_start_instant_moves_the_clock_but_keeps_the_state(
    data_dir: Path,
) -> None:
    first = SimulatorServer(data_dir, start=SIM_START, seed=7)
    first.start()
    try:
        created = control(first, "POST", "/sim/customers", {"name": "Eve"})
    finally:
        first.stop()
    later = SIM_START.replace(day=5)
    second = SimulatorServer(data_dir, start=later, seed=7)
    second.start()
    try:
        assert control(second, "GET", "/sim/clock")["now"].startswith("2025-06-05T15:00")
        names = [c["name"] for c in control(second, "GET", "/sim/customers")]
        assert names == ["Default", "Eve"]
        eve = sdk_session(second, created["client-secret"], created["refresh-token"])
        assert [a.account_number for a in await Account.get(eve)] == created["accounts"]
    finally:
        second.stop()
