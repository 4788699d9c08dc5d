"""The real SDK through the adapter against the simulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal
from typing import Any
from uuid import uuid4

import httpx2
import pytest
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerCredentials, BrokerOrder, RateSource
from libs.broker.settings import BrokerSettings
from libs.contracts.errors import (
    ApiError,
    AuthFailed,
    BrokerTimeout,
    BrokerUnavailable,
    NotFound,
    OrderRejectedError,
    RateLimited,
)
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
DEFAULT = BrokerCredentials(
    client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
    refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
)
CENT = Decimal("0.01")


def settings_for(server: SimulatorServer, timeout: float = 3.0) -> BrokerSettings:
    return BrokerSettings(
        mode=TradingMode.PAPER, simulator_url=server.url, request_timeout_s=timeout
    )


@pytest.fixture
async def adapter(simulator: SimulatorServer) -> AsyncIterator[BrokerAdapter]:
    async with BrokerAdapter(
        settings_for(simulator), StaticCredentials({ACCOUNT: DEFAULT})
    ) as adapter:
        yield adapter


async def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    async with httpx2.AsyncClient(base_url=server.url, trust_env=False) as client:
        response = await client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


async def put_spread(
    adapter: BrokerAdapter, server: SimulatorServer
) -> tuple[OccSymbol, OccSymbol, Decimal]:
    """A 5-wide SPY put spread near the money ~30-50 DTE, and its mid credit."""
    chain = await adapter.get_option_chain(ACCOUNT, "SPY")
    expiration = min(chain.expirations, key=lambda e: abs(e.days_to_expiration - 40))
    spot = Decimal((await control(server, "GET", "/sim/prices/SPY"))["price"])
    by_strike = {s.strike: s for s in expiration.strikes}
    short = min(by_strike, key=lambda k: abs(k - spot))
    long = short - 5
    assert long in by_strike
    short_q = await control(server, "GET", f"/sim/quotes/{by_strike[short].put}")
    long_q = await control(server, "GET", f"/sim/quotes/{by_strike[long].put}")
    mid = Decimal(short_q["mid"]) - Decimal(long_q["mid"])
    return by_strike[short].put, by_strike[long].put, mid


def opening(short: OccSymbol, long: OccSymbol, price: Decimal, qty: int = 1) -> OrderRequest:
    return OrderRequest(
        underlying="SPY",
        legs=(
            OrderLeg(symbol=short, action=OrderAction.SELL_TO_OPEN, quantity=qty),
            OrderLeg(symbol=long, action=OrderAction.BUY_TO_OPEN, quantity=qty),
        ),
        limit_price=price.quantize(CENT, rounding=ROUND_DOWN),
        time_in_force=TimeInForce.DAY,
        client_tag=client_tag_for(uuid4()),
    )


async def settled(adapter: BrokerAdapter, order: BrokerOrder, seconds: float = 5) -> BrokerOrder:
    """The order once it stops changing toward a fill (or when time runs out)."""
    for _ in range(int(seconds / 0.1)):
        order = await adapter.get_order(ACCOUNT, order.broker_order_id)
        if order.status.is_terminal:
            return order
        await asyncio.sleep(0.1)
    return order


async def test_accounts_and_balances(adapter: BrokerAdapter) -> None:
    accounts = await adapter.list_accounts(ACCOUNT)
    assert [a.account_number for a in accounts] == [ACCOUNT]
    balances = await adapter.get_balances(ACCOUNT)
    assert balances.derivative_buying_power > 0
    assert balances.net_liquidating_value > 0
    assert await adapter.get_positions(ACCOUNT) == []


async def test_chain_and_metrics_and_rate(adapter: BrokerAdapter) -> None:
    chain = await adapter.get_option_chain(ACCOUNT, "SPY")
    assert chain.expirations
    strike = chain.expirations[0].strikes[0]
    assert strike.put.streamer_symbol == strike.put_streamer_symbol
    metrics = await adapter.get_market_metrics(ACCOUNT, ["SPY", "QQQ"])
    assert {m.symbol for m in metrics} == {"SPY", "QQQ"}
    assert all(m.iv_rank is None or 0 <= m.iv_rank <= 100 for m in metrics)
    rate = await adapter.get_risk_free_rate(ACCOUNT)
    assert rate.source is RateSource.BROKER


async def test_unknown_underlying_chain_is_not_found(adapter: BrokerAdapter) -> None:
    with pytest.raises(NotFound):
        await adapter.get_option_chain(ACCOUNT, "ZZZZ")


async def test_dry_run_reports_buying_power_effect(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    short, long, mid = await put_spread(adapter, simulator)
    result = await adapter.dry_run(ACCOUNT, opening(short, long, mid))
    assert result.sufficient
    assert result.buying_power_effect.change_in_buying_power < 0
    assert await adapter.get_live_orders(ACCOUNT) == []


async def test_mid_priced_order_fills_and_opens_positions(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    short, long, mid = await put_spread(adapter, simulator)
    request = opening(short, long, mid)
    placed = await adapter.place_order(ACCOUNT, request)
    assert placed.client_tag == request.client_tag
    assert placed.limit_price == request.limit_price
    filled = await settled(adapter, placed)
    assert filled.status is OrderStatus.FILLED
    assert filled.filled_quantity(short) == 1
    positions = {p.symbol: p.quantity for p in await adapter.get_positions(ACCOUNT)}
    assert positions == {short: -1, long: 1}


async def test_far_from_market_order_rests_then_cancels(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    short, long, mid = await put_spread(adapter, simulator)
    placed = await adapter.place_order(ACCOUNT, opening(short, long, mid + 2))
    assert placed.status is OrderStatus.WORKING
    assert [o.broker_order_id for o in await adapter.get_live_orders(ACCOUNT) if o.is_live] == [
        placed.broker_order_id
    ]
    await adapter.cancel_order(ACCOUNT, placed.broker_order_id)
    assert (await settled(adapter, placed)).status is OrderStatus.CANCELLED


async def test_replace_reprices_and_the_old_order_is_replaced(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    short, long, mid = await put_spread(adapter, simulator)
    placed = await adapter.place_order(ACCOUNT, opening(short, long, mid + 2))
    repriced = opening(short, long, mid + 1)
    replacement = await adapter.replace_order(ACCOUNT, placed.broker_order_id, repriced)
    assert replacement.broker_order_id != placed.broker_order_id
    assert replacement.limit_price == repriced.limit_price
    old = await adapter.get_order(ACCOUNT, placed.broker_order_id)
    assert old.status is OrderStatus.REPLACED


async def test_partial_fill_is_reported(adapter: BrokerAdapter, simulator: SimulatorServer) -> None:
    await control(simulator, "POST", "/sim/faults", {"kind": "partial"})
    short, long, mid = await put_spread(adapter, simulator)
    placed = await adapter.place_order(ACCOUNT, opening(short, long, mid, qty=4))
    order = placed
    for _ in range(50):
        order = await adapter.get_order(ACCOUNT, placed.broker_order_id)
        if order.fills:
            break
        await asyncio.sleep(0.1)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert 0 < order.filled_quantity(short) < 4


async def test_rejection_carries_the_broker_reason(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    short, long, mid = await put_spread(adapter, simulator)
    await control(simulator, "POST", "/sim/faults", {"kind": "reject", "reason": "no route"})
    with pytest.raises(OrderRejectedError, match="no route"):
        await adapter.place_order(ACCOUNT, opening(short, long, mid))
    await control(
        simulator, "POST", "/sim/faults", {"kind": "reject", "reason": "halted", "as-error": True}
    )
    with pytest.raises(OrderRejectedError, match="halted"):
        await adapter.place_order(ACCOUNT, opening(short, long, mid))


async def test_timeout_after_accept_is_found_by_client_tag(simulator: SimulatorServer) -> None:
    async with BrokerAdapter(
        settings_for(simulator, timeout=1.0), StaticCredentials({ACCOUNT: DEFAULT})
    ) as adapter:
        short, long, mid = await put_spread(adapter, simulator)
        await control(simulator, "POST", "/sim/faults", {"kind": "timeout", "seconds": 3})
        request = opening(short, long, mid + 2)
        with pytest.raises(BrokerTimeout):
            await adapter.place_order(ACCOUNT, request)
        found = await adapter.find_order_by_client_tag(ACCOUNT, request.client_tag)
        assert found is not None
        assert found.client_tag == request.client_tag
        assert await adapter.find_order_by_client_tag(ACCOUNT, "sx-unknown") is None


async def test_forced_token_expiry_refreshes(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    await adapter.get_balances(ACCOUNT)
    await control(simulator, "POST", "/sim/tokens/expire", {})
    balances = await adapter.get_balances(ACCOUNT)
    assert balances.account_number == ACCOUNT
    adapter.expire_session(ACCOUNT)
    assert (await adapter.get_balances(ACCOUNT)).account_number == ACCOUNT


async def test_401_refreshes_then_succeeds(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    await adapter.get_balances(ACCOUNT)
    await control(simulator, "POST", "/sim/faults", {"kind": "unauthorized"})
    assert (await adapter.get_balances(ACCOUNT)).account_number == ACCOUNT


async def test_rate_limit_and_server_error_are_typed(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    await adapter.get_balances(ACCOUNT)
    await control(simulator, "POST", "/sim/faults", {"kind": "rate-limit"})
    with pytest.raises(RateLimited):
        await adapter.get_balances(ACCOUNT)
    await control(simulator, "POST", "/sim/faults", {"kind": "server-error"})
    with pytest.raises(ApiError):
        await adapter.get_balances(ACCOUNT)


async def test_bad_credentials_are_auth_failed(simulator: SimulatorServer) -> None:
    wrong = BrokerCredentials(client_secret=SecretStr("nope"), refresh_token=SecretStr("nope"))
    async with BrokerAdapter(settings_for(simulator), StaticCredentials({ACCOUNT: wrong})) as bad:
        with pytest.raises(AuthFailed):
            await bad.get_balances(ACCOUNT)
        with pytest.raises(AuthFailed):
            await bad.verify_credentials(wrong)


async def test_unreachable_simulator_is_broker_unavailable(simulator: SimulatorServer) -> None:
    settings = BrokerSettings(mode=TradingMode.PAPER, simulator_url="http://127.0.0.1:9")
    async with BrokerAdapter(settings, StaticCredentials({ACCOUNT: DEFAULT})) as adapter:
        with pytest.raises(BrokerUnavailable):
            await adapter.get_balances(ACCOUNT)


async def test_two_customers_see_only_their_own(
    adapter: BrokerAdapter, simulator: SimulatorServer
) -> None:
    other = await control(simulator, "POST", "/sim/customers", {"name": "Bob"})
    bob_account = other["accounts"][0]
    bob = BrokerCredentials(
        client_secret=SecretStr(other["client-secret"]),
        refresh_token=SecretStr(other["refresh-token"]),
    )
    short, long, mid = await put_spread(adapter, simulator)
    mine = await adapter.place_order(ACCOUNT, opening(short, long, mid + 2))
    async with BrokerAdapter(
        settings_for(simulator), StaticCredentials({bob_account: bob, ACCOUNT: bob})
    ) as bobs:
        assert [a.account_number for a in await bobs.verify_credentials(bob)] == [bob_account]
        assert await bobs.get_live_orders(bob_account) == []
        with pytest.raises((NotFound, AuthFailed)):
            await bobs.get_balances(ACCOUNT)
    with pytest.raises((NotFound, AuthFailed)):
        await adapter.get_order(bob_account, mine.broker_order_id)
