"""``POST /sim/accounts/{acct}/positions/close``: a position closed outside Senex."""

from __future__ import annotations

import urllib.error
from decimal import Decimal

import orjson
import pytest
from tastytrade import Account

from services.simulator.server import SimulatorServer
from tests.integration.simulator.test_sdk_against_simulator import (
    control,
    natural_and_mid,
    put_spread,
    quotes,
    spread_order,
)
from tests.simulator_fixtures import sdk_session

ACCOUNT = "5WT00001"
CLOSE = f"/sim/accounts/{ACCOUNT}/positions/close"


async def test_closing_externally_removes_the_position_from_the_sdk(
    simulator: SimulatorServer,
) -> None:
    control(simulator, "PUT", "/sim/clock", {"speed": 0})
    control(simulator, "PUT", "/sim/prices/SPY", {"price": "600.00"})
    session = sdk_session(simulator)
    account = await Account.get(session, ACCOUNT)
    short, long = await put_spread(session)
    natural, _ = natural_and_mid(simulator, short, long)
    await account.place_order(
        session, spread_order(short, long, str(natural), qty=2), dry_run=False
    )
    short_mid = Decimal(quotes(simulator, short)[0]["mid"]).quantize(Decimal("0.01"))
    cash = (await account.get_balances(session)).cash_balance

    assert control(simulator, "POST", CLOSE, {"symbol": short, "quantity": 1}) == {"closed": short}
    positions = {p.symbol: p.quantity for p in await account.get_positions(session)}
    assert positions == {short: 1, long: 2}

    control(simulator, "POST", CLOSE, {"symbol": short})  # the rest of it
    positions = {p.symbol: p.quantity for p in await account.get_positions(session)}
    assert positions == {long: 2}
    # Both short contracts were bought back at the mid.
    balances = await account.get_balances(session)
    assert balances.cash_balance == cash - short_mid * 2 * 100


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param(CLOSE, {"symbol": "SPY   250620P00500000"}, 404, id="no-such-position"),
        pytest.param("/sim/accounts/5WT99999/positions/close", {"symbol": "x"}, 404, id="account"),
        pytest.param(CLOSE, {}, 400, id="no-symbol"),
        pytest.param(CLOSE, {"symbol": "x", "quantity": 0}, 400, id="zero-quantity"),
    ],
)
def test_closing_what_is_not_there_is_an_api_error(
    simulator: SimulatorServer, path: str, body: dict[str, object], status: int
) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        control(simulator, "POST", path, body)
    assert raised.value.code == status
    error = orjson.loads(raised.value.read())["error"]
    assert error["code"]
    assert error["message"]
