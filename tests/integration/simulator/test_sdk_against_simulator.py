"""The real tastytrade SDK against the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from tastytrade import Account, Session
from tastytrade.instruments import NestedOptionChain, Option
from tastytrade.metrics import get_market_metrics, get_risk_free_rate
from tastytrade.order import (
    InstrumentType,
    Leg,
    LimitOrder,
    OrderAction,
    OrderStatus,
)
from tastytrade.utils import TastytradeError

from services.simulator.server import SimulatorServer
from tests.simulator_fixtures import sdk_session


def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """Call the /sim/ control API."""
    raw = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=raw, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def put_spread(session: Session, *, width: int = 3) -> tuple[str, str]:
    """(short, long) OCC symbols of a put spread ~30-50 DTE at the money."""
    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    expiration = next(e for e in chain.expirations if 30 <= e.days_to_expiration <= 50)
    strikes = {s.strike_price: s for s in expiration.strikes}
    middle = sorted(strikes)[len(strikes) // 2]
    return strikes[middle].put, strikes[middle - width].put


def spread_order(short: str, long: str, price: str, qty: int = 1, **kw: Any) -> LimitOrder:
    legs = [
        Leg(
            instrument_type=InstrumentType.EQUITY_OPTION,
            symbol=short,
            action=OrderAction.SELL_TO_OPEN,
            quantity=qty,
        ),
        Leg(
            instrument_type=InstrumentType.EQUITY_OPTION,
            symbol=long,
            action=OrderAction.BUY_TO_OPEN,
            quantity=qty,
        ),
    ]
    return LimitOrder(legs=legs, price=Decimal(price), **kw)


def quotes(server: SimulatorServer, *symbols: str) -> list[dict[str, Any]]:
    return [control(server, "GET", "/sim/quotes/" + s.replace(" ", "%20")) for s in symbols]


def natural_and_mid(server: SimulatorServer, short: str, long: str) -> tuple[Decimal, Decimal]:
    s, lg = quotes(server, short, long)
    natural = Decimal(s["bid"]) - Decimal(lg["ask"])
    mid = Decimal(s["mid"]) - Decimal(lg["mid"])
    return natural, mid


async def test_refresh_accounts_balances_positions(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    accounts = await Account.get(session)
    assert [a.account_number for a in accounts] == ["5WT00001"]
    account = await Account.get(session, "5WT00001")
    balances = await account.get_balances(session)
    assert balances.cash_balance == Decimal("100000.00")
    assert balances.derivative_buying_power == Decimal("100000.00")
    assert await account.get_positions(session) == []
    assert await session.validate()


async def test_bad_credentials_raise_sdk_error(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator, "wrong", "nope")
    with pytest.raises(TastytradeError, match="invalid_grant"):
        await Account.get(session)


async def test_forced_token_expiry_then_refresh(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    await Account.get(session)
    control(simulator, "POST", "/sim/tokens/expire", {})
    with pytest.raises(TastytradeError, match="token_invalid"):
        await Account.get(session)
    await session.refresh(force=True)
    assert len(await Account.get(session)) == 1


async def test_short_token_lifetime_refreshes_every_request(simulator: SimulatorServer) -> None:
    control(simulator, "PUT", "/sim/config", {"token-lifetime": 30})
    session = sdk_session(simulator)
    await Account.get(session)
    first = session.session_token
    await Account.get(session)
    assert session.session_token != first


async def test_unauthorized_fault_then_refresh_succeeds(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    await Account.get(session)
    control(simulator, "POST", "/sim/faults", {"kind": "unauthorized"})
    with pytest.raises(TastytradeError, match="token_invalid"):
        await Account.get(session)
    await session.refresh(force=True)
    assert len(await Account.get(session)) == 1


@pytest.mark.parametrize(("kind", "code"), [("rate-limit", 429), ("server-error", 500)])
async def test_rate_limit_and_server_error_faults(
    simulator: SimulatorServer, kind: str, code: int
) -> None:
    session = sdk_session(simulator)
    await session.refresh()
    control(simulator, "POST", "/sim/faults", {"kind": kind})
    response = await session._client.get("/customers/me/accounts")
    assert response.status_code == code
    assert "error" in response.json()
    assert len(await Account.get(session)) == 1


async def test_chain_option_metrics_and_rate(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    dtes = [e.days_to_expiration for e in chain.expirations]
    assert max(dtes) >= 70
    assert {e.expiration_type for e in chain.expirations} == {"Weekly", "Regular"}
    strike = chain.expirations[0].strikes[10]
    option = await Option.get(session, strike.call)
    assert option.streamer_symbol == strike.call_streamer_symbol
    assert Option.occ_to_streamer_symbol(strike.put) == strike.put_streamer_symbol
    metrics = await get_market_metrics(session, ["SPY", "QQQ"])
    assert {m.symbol for m in metrics} == {"SPY", "QQQ"}
    assert all(0 <= Decimal(m.implied_volatility_index_rank or "-1") <= 1 for m in metrics)
    assert await get_risk_free_rate(session) == Decimal("0.0425")


async def test_dry_run_reports_buying_power_effect(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    response = await account.place_order(session, spread_order(short, long, "1.00"))
    assert response.order.price == Decimal("1.00")
    effect = response.buying_power_effect
    # A 3-wide credit spread at 1.00 uses 300 - 100 of buying power.
    assert effect.change_in_buying_power == Decimal("-200.00")
    assert effect.isolated_order_margin_requirement == Decimal("-300.00")
    assert effect.new_buying_power == Decimal("99800.00")


async def test_marketable_order_fills_with_leg_prices(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    natural, _ = natural_and_mid(simulator, short, long)
    order = spread_order(short, long, str(natural), qty=2, external_identifier="bot-1")
    placed = await account.place_order(session, order, dry_run=False)
    assert placed.order.status == OrderStatus.FILLED
    assert placed.order.external_identifier == "bot-1"
    fills = {leg.symbol: leg.fills[0].fill_price for leg in placed.order.legs if leg.fills}
    assert fills[short] - fills[long] == natural
    # The SDK signs average_fill_price as buys positive, so a credit comes out negative.
    assert placed.order.average_fill_price() == -natural
    positions = {p.symbol: p for p in await account.get_positions(session)}
    assert positions[short].quantity_direction == "Short"
    assert positions[short].quantity == 2
    balances = await account.get_balances(session)
    assert balances.cash_balance == Decimal("100000") + natural * 200
    assert balances.derivative_buying_power == balances.cash_balance - Decimal(3 * 100 * 2)


async def test_mid_priced_order_fills_after_delay(simulator: SimulatorServer) -> None:
    control(simulator, "PUT", "/sim/config", {"fill-delay-seconds": 0.3})
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    natural, mid = natural_and_mid(simulator, short, long)
    price = mid.quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    assert price > natural
    placed = await account.place_order(session, spread_order(short, long, str(price)), False)
    assert placed.order.status == OrderStatus.LIVE
    for _ in range(50):
        await asyncio.sleep(0.1)
        order = await account.get_order(session, placed.order.id)
        if order.status == OrderStatus.FILLED:
            break
    assert order.status == OrderStatus.FILLED
    assert order.average_fill_price() == -price


async def test_resting_order_replace_cancel_and_history(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    _, mid = natural_and_mid(simulator, short, long)
    far = str((mid + 1).quantize(Decimal("0.01")))
    placed = await account.place_order(
        session, spread_order(short, long, far, external_identifier="tag-7"), dry_run=False
    )
    assert placed.order.status == OrderStatus.LIVE
    live = await account.get_live_orders(session)
    assert [o.external_identifier for o in live] == ["tag-7"]
    new_price = str((mid + 2).quantize(Decimal("0.01")))
    replacement = await account.replace_order(
        session, placed.order.id, LimitOrder(legs=[], price=Decimal(new_price))
    )
    assert replacement.price == Decimal(new_price)
    assert replacement.external_identifier == "tag-7"
    old = await account.get_order(session, placed.order.id)
    assert old.status == OrderStatus.CANCELLED
    await account.delete_order(session, replacement.id)
    history = await account.get_order_history(session, per_page=1, page_offset=None)
    assert {o.id: o.status for o in history} == {
        placed.order.id: OrderStatus.CANCELLED,
        replacement.id: OrderStatus.CANCELLED,
    }
    with pytest.raises(TastytradeError, match="order_not_cancellable"):
        await account.delete_order(session, replacement.id)


async def test_market_moving_through_a_resting_order_fills_it(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    _, mid = natural_and_mid(simulator, short, long)
    price = (mid + Decimal("0.30")).quantize(Decimal("0.01"))
    placed = await account.place_order(session, spread_order(short, long, str(price)), False)
    assert placed.order.status == OrderStatus.LIVE
    spot = Decimal(control(simulator, "GET", "/sim/prices/SPY")["price"])
    control(simulator, "PUT", "/sim/prices/SPY", {"price": str(spot - 15)})
    order = await account.get_order(session, placed.order.id)
    assert order.status == OrderStatus.FILLED


async def test_partial_fill_then_cancel(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    natural, _ = natural_and_mid(simulator, short, long)
    control(simulator, "POST", "/sim/faults", {"kind": "partial"})
    placed = await account.place_order(
        session, spread_order(short, long, str(natural), qty=4), dry_run=False
    )
    assert placed.order.status == OrderStatus.LIVE
    assert all(leg.remaining_quantity == 2 for leg in placed.order.legs)
    await account.delete_order(session, placed.order.id)
    order = await account.get_order(session, placed.order.id)
    assert order.status == OrderStatus.CANCELLED
    assert sum(f.quantity for f in order.legs[0].fills or []) == 2


async def test_reject_with_reason(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    control(simulator, "POST", "/sim/faults", {"kind": "reject", "reason": "Exchange closed"})
    placed = await account.place_order(session, spread_order(short, long, "1.00"), False)
    assert placed.order.status == OrderStatus.REJECTED
    assert placed.order.reject_reason == "Exchange closed"
    control(simulator, "POST", "/sim/faults", {"kind": "reject", "as-error": True})
    with pytest.raises(TastytradeError, match="order_rejected"):
        await account.place_order(session, spread_order(short, long, "1.00"), False)


async def test_timeout_after_accept_found_by_external_identifier(
    simulator: SimulatorServer,
) -> None:
    session = sdk_session(simulator, timeout=1.0)
    account = await Account.get(session, "5WT00001")
    short, long = await put_spread(session)
    control(simulator, "POST", "/sim/faults", {"kind": "timeout", "seconds": 3})
    order = spread_order(short, long, "9.00", external_identifier="decision-42")
    with pytest.raises(httpx2.TimeoutException):
        await account.place_order(session, order, dry_run=False)
    live = await account.get_live_orders(session)
    assert [o.external_identifier for o in live] == ["decision-42"]


async def test_two_customers_are_isolated(simulator: SimulatorServer) -> None:
    created = control(
        simulator, "POST", "/sim/customers", {"name": "Bob", "starting-cash": "25000"}
    )
    alice, bob = (
        sdk_session(simulator),
        sdk_session(simulator, created["client-secret"], created["refresh-token"]),
    )
    bob_accounts = await Account.get(bob)
    assert [a.account_number for a in bob_accounts] == created["accounts"]
    assert (await bob_accounts[0].get_balances(bob)).cash_balance == Decimal("25000")
    alice_account = (await Account.get(alice))[0]
    short, long = await put_spread(alice)
    placed = await alice_account.place_order(alice, spread_order(short, long, "9.00"), False)
    assert await bob_accounts[0].get_live_orders(bob) == []
    with pytest.raises(TastytradeError, match="not_found"):
        await Account.get(bob, "5WT00001")
    with pytest.raises(TastytradeError, match="not_found"):
        await bob_accounts[0].get_order.__func__(alice_account, bob, placed.order.id)  # type: ignore[attr-defined]


async def test_malformed_requests_get_error_shape(simulator: SimulatorServer) -> None:
    session = sdk_session(simulator)
    await session.refresh()
    client = session._client
    acct = "/accounts/5WT00001"
    leg = {
        "instrument-type": "Equity Option",
        "symbol": "SPY   250101P00500000",
        "action": "Sell to Open",
        "quantity": 1,
    }
    bad: list[tuple[str, str, Any]] = [
        ("GET", "/no/such/path", None),
        ("DELETE", "/customers/me/accounts", None),
        ("POST", acct + "/orders", b"{not json"),
        ("POST", acct + "/orders", b"[1, 2]"),
        ("POST", acct + "/orders", {"order-type": "Limit"}),
        ("POST", acct + "/orders", {"order-type": "Stop", "legs": [leg]}),
        ("POST", acct + "/orders", {"order-type": "Limit", "price": "x", "legs": [leg]}),
        ("POST", acct + "/orders", {"order-type": "Limit", "price": "1", "legs": [leg]}),
        ("POST", acct + "/orders", {"order-type": "Limit", "price": "1.001", "legs": [leg]}),
        ("POST", acct + "/orders", {"order-type": "Limit", "price": "1", "legs": "x"}),
        ("POST", acct + "/orders/dry-run", {"order-type": "Limit", "legs": [{"symbol": 5}]}),
        ("GET", acct + "/orders/abc", None),
        ("GET", acct + "/orders/999999", None),
        ("PUT", acct + "/orders/999999", {"order-type": "Limit", "price": "1"}),
        ("GET", "/accounts/5WT99999/balances", None),
        ("GET", "/instruments/equity-options/NOPE", None),
        ("GET", "/option-chains/TSLA/nested", None),
        ("POST", "/oauth/token", b"\xff\xfe"),
        ("POST", "/oauth/token", {"grant_type": "password"}),
        ("POST", "/sim/faults", {"kind": "explode"}),
        ("PUT", "/sim/clock", {"time": "yesterday"}),
        ("PUT", "/sim/prices/SPY", {"price": "-5"}),
        ("POST", "/sim/customers", {"accounts": "many"}),
    ]
    for method, path, body in bad:
        content = body if isinstance(body, bytes) else None
        payload = body if not isinstance(body, bytes) and body is not None else None
        response = await client.request(method, path, content=content, json=payload)
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        error = response.json()["error"]
        assert error["code"], (method, path)
        assert error["message"], (method, path)
    unauthenticated = await client.get(
        "/customers/me/accounts", headers={"Authorization": "Bearer nope"}
    )
    assert unauthenticated.status_code == 401
    assert control(simulator, "GET", "/sim/health")["status"] == "ok"
    assert len(await Account.get(session)) == 1
    assert isinstance((await Account.get(session))[0], Account)
