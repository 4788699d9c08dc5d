"""The whole trade through the HTTP API alone: generate -> execute -> fill -> positions.

Every service runs (audit, market data, strategy, risk, execution, position monitor,
gateway) against the simulator; the test is a client that only speaks HTTP, as the
trading screen does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.integration.gateway.world import World, running_world

GENERATE = "/trading/api/senex_trident/generate/"
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
async def world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    async with running_world(server_root, database_url, full=True) as w:
        yield w


async def _poll(
    fetch: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 30.0
) -> Any:
    """``fetch`` until ``done`` holds for its answer (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            answer = await fetch()
            if done(answer):
                return answer
            await asyncio.sleep(0.1)


async def _get(client: httpx2.AsyncClient, path: str) -> Any:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_generate_execute_fill_and_the_position_with_its_exits(world: World) -> None:
    async with world.user("alice") as client:
        response = await client.post(GENERATE, json={"symbol": "QQQ"})
        assert response.status_code == 200, response.text
        suggestion_id = response.json()["suggestion"]["suggestion"]["suggestion_id"]

        view = await _poll(
            lambda: _get(client, f"/trading/api/suggestions/{suggestion_id}/"),
            lambda body: body["suggestion"]["risk_check_passed"] is not None,
        )
        assert view["suggestion"]["risk_check_passed"] is True
        suggestion = view["suggestion"]["suggestion"]
        # The natural total credit is marketable at the simulator (a credit at or
        # below the bids fills); custom credits are in total-credit units.
        natural = Decimal(suggestion["total_natural_credit"]).quantize(CENT, ROUND_DOWN)
        assert natural > 0
        warning = view["suggestion"]["assessment"]["warning_level"] != "NONE"
        response = await client.post(
            f"/trading/api/senex_trident/suggestions/{suggestion_id}/execute/",
            json={"custom_credit": str(natural), "confirm_warning": warning},
        )
        assert response.status_code == 200, response.text
        assert Decimal(response.json()["limit_credit"]) == natural

        def opening(orders: Any) -> dict[str, Any] | None:
            return next(
                (
                    o
                    for o in orders["orders"]
                    if o["suggestion_id"] == suggestion_id and o["purpose"] == "OPEN"
                ),
                None,
            )

        orders = await _poll(
            lambda: _get(client, "/trading/api/orders/?open_only=false"),
            lambda body: (o := opening(body)) is not None and o["status"] == "FILLED",
        )
        order = opening(orders)
        assert order is not None
        assert order["time_in_force"] == "DAY"
        assert Decimal(order["limit_price"]) == natural
        status = await _get(client, f"/trading/api/order-status/{order['order_id']}/")
        assert status["order"]["status"] == "FILLED"

        legs = {leg["symbol"] for leg in order["legs"]}

        def the_position(body: Any) -> dict[str, Any] | None:
            """The position holding exactly the opening order's legs."""
            found: list[dict[str, Any]] = body["positions"]
            for p in found:
                held = {
                    s["spread"][k] for s in p["spreads"] for k in ("short_symbol", "long_symbol")
                }
                if held == legs:
                    return p
            return None

        positions = await _poll(
            lambda: _get(client, "/trading/api/positions/"),
            lambda body: (
                (p := the_position(body)) is not None
                and all(s["exit_order_id"] for s in p["spreads"])
            ),
        )
        position = the_position(positions)
        assert position is not None
        # The filled opening order names the position it opened.
        opened = await _get(client, f"/trading/api/order-status/{order['order_id']}/")
        assert opened["order"]["position_id"] == position["position_id"]
        assert position["status"] == "OPEN"
        assert position["app_managed"]
        assert not position["needs_attention"]
        spreads = position["spreads"]
        assert [s["spread"]["kind"] for s in spreads] == [
            "PUT_SPREAD_1",
            "PUT_SPREAD_2",
            "CALL_SPREAD",
        ]
        assert {s["exit_purpose"] for s in spreads} == {"PROFIT_TARGET"}

        pending = await _get(client, "/trading/api/pending-orders/")
        exits = {o["order_id"]: o for o in pending["orders"] if o["purpose"] == "PROFIT_TARGET"}
        for spread in spreads:
            exit_order = exits[spread["exit_order_id"]]
            assert exit_order["time_in_force"] == "GTC"
            entry = Decimal(spread["spread"]["entry_credit"])
            target = Decimal(spread["spread"]["profit_target"])
            # A closing debit: negative, the entry credit x (1 - target), rounded up.
            assert Decimal(exit_order["limit_price"]) < 0
            assert abs(Decimal(exit_order["limit_price"]) + entry * (1 - target)) < CENT

    async with world.user("bob") as other:
        response = await other.get(f"/trading/api/order-status/{order['order_id']}/")
        assert response.status_code == 404
