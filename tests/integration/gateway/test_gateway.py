"""The gateway over HTTP, with the real audit, market data, strategy and risk services.

One world for the module (see `world.py`): alice and bob were created as ``senex user
create`` creates them (a simulator customer each, $100,000); carol's customer holds
$628, so her suggestion's risk check warns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx2
import pytest

from libs.broker.vault import CredentialsVault
from libs.contracts.account import AccountLinked, AccountSettingsChanged
from libs.contracts.envelope import Event
from services.simulator.customers import DEFAULT_ACCOUNT_NUMBER
from tests.integration.gateway.world import PASSWORD, World, error_of, running_world
from tests.integration.market_data.helpers import control, eventually
from tests.integration.risk.harness import broker_settings

GENERATE = "/trading/api/senex_trident/generate/"


@pytest.fixture(scope="module")
async def world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    async with running_world(server_root, database_url) as w:
        yield w


async def generate(client: httpx2.AsyncClient, symbol: str = "QQQ") -> dict[str, Any]:
    response = await client.post(GENERATE, json={"symbol": symbol})
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()["suggestion"]
    return view


async def checked(client: httpx2.AsyncClient, suggestion_id: str) -> dict[str, Any]:
    """The suggestion's view once its risk check is known."""
    for _ in range(200):
        response = await client.get(f"/trading/api/suggestions/{suggestion_id}/")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()["suggestion"]
        if view["risk_check_passed"] is not None:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError("the risk check did not arrive")


def of_type(kind: type[Event], **match: Any) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())


# --- users and accounts ------------------------------------------------------------------


async def test_user_create_links_each_user_to_a_simulator_customer_of_their_own(
    world: World,
) -> None:
    alice, bob = world.accounts["alice"], world.accounts["bob"]
    assert len({alice, bob, DEFAULT_ACCOUNT_NUMBER}) == 3
    customers = await control(world.simulator, "GET", "/sim/customers")
    by_name = {c["name"]: c["accounts"] for c in customers}
    assert by_name["alice"] == [alice]
    assert by_name["bob"] == [bob]
    vault = await CredentialsVault.open(world.dsn, broker_settings(world.simulator))
    assert [link.account_number for link in await vault.links("alice")] == [alice]
    for user, account in (("alice", alice), ("bob", bob)):
        linked = await world.events.wait_for(of_type(AccountLinked, account_id=account))
        assert isinstance(linked, AccountLinked)
        assert linked.user_id == user
        assert linked.producer == "gateway"
        changed = await world.events.wait_for(of_type(AccountSettingsChanged, account_id=account))
        assert isinstance(changed, AccountSettingsChanged)
        assert changed.settings.risk_template.value == "CONSERVATIVE"


async def test_login_me_logout(world: World) -> None:
    async with world.client() as client:
        response = await client.get("/api/me")
        assert response.status_code == 401
        assert error_of(response)["kind"] == "AUTH_FAILED"

        response = await client.post(
            "/api/auth/login", json={"username": "Alice", "password": PASSWORD}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["user_id"] == "alice"
        cookie = response.headers["set-cookie"]
        assert "senex_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain http in the test
        assert body["csrf_token"] not in cookie
        assert PASSWORD not in response.text

        me = (await client.get("/api/me")).json()
        assert me["user"]["user_id"] == "alice"
        assert [a["account_number"] for a in me["accounts"]] == [world.accounts["alice"]]
        assert me["accounts"][0]["mode"] == "PAPER"
        assert me["csrf_token"] == body["csrf_token"]

        # Logout changes state: it needs the token too.
        response = await client.post("/api/auth/logout")
        assert response.status_code == 403
        response = await client.post(
            "/api/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]}
        )
        assert response.status_code == 200
        # The session is over on the server, even for a client that kept the cookie.
        client.cookies.set("senex_session", cookie.split("senex_session=")[1].split(";")[0])
        assert (await client.get("/api/me")).status_code == 401


async def test_wrong_password_is_401_and_repeated_attempts_are_rate_limited(
    world: World,
) -> None:
    async with world.client() as client:
        for _ in range(5):
            response = await client.post(
                "/api/auth/login", json={"username": "mallory", "password": "guess-guess"}
            )
            assert response.status_code == 401
            assert error_of(response)["message"] == "wrong username or password"
        response = await client.post(
            "/api/auth/login", json={"username": "MALLORY", "password": "guess-guess"}
        )
        assert response.status_code == 429
        assert error_of(response)["kind"] == "RATE_LIMITED"
        assert int(response.headers["retry-after"]) > 0
        # Another user from the same address is not affected.
        response = await client.post(
            "/api/auth/login", json={"username": "bob", "password": "wrong password"}
        )
        assert response.status_code == 401


async def test_state_changing_requests_need_the_csrf_token(world: World) -> None:
    async with world.user("alice") as alice:
        token = alice.headers.pop("X-CSRF-Token")
        assert (await alice.get("/trading/api/settings/")).status_code == 200
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            response = await alice.put(
                "/trading/api/settings/",
                json={"risk_template": "AGGRESSIVE"},
                headers=headers,
            )
            assert response.status_code == 403
            error = error_of(response)
            assert error["kind"] == "AUTH_FAILED"
            assert error["field"] == "X-CSRF-Token"
            response = await alice.post(GENERATE, json={"symbol": "QQQ"}, headers=headers)
            assert response.status_code == 403
        # Another session's token is no good either.
        async with world.user("bob") as bob:
            other = bob.headers["X-CSRF-Token"]
        response = await alice.post(
            GENERATE, json={"symbol": "QQQ"}, headers={"X-CSRF-Token": other}
        )
        assert response.status_code == 403
        assert token != other


# --- settings and broker link ----------------------------------------------------------


async def test_settings_round_trip_publishes_account_settings_changed(world: World) -> None:
    account = world.accounts["bob"]
    wanted = {
        "risk_template": "MODERATE",
        "automation_enabled": True,
        "automation_offset_cents": 5,
        "underlyings": ["SPY", "QQQ"],
        "email_topics": ["ORDER_FILLED", "STOP_LOSS"],
    }
    async with world.user("bob") as bob:
        before = (await bob.get("/trading/api/settings/")).json()
        assert before["account_number"] == account
        assert before["settings"]["risk_template"] == "CONSERVATIVE"

        response = await bob.put("/trading/api/settings/", json=wanted)
        assert response.status_code == 200, response.text
        stored = response.json()["settings"]
        assert stored["underlyings"] == ["QQQ", "SPY"]  # a set: sorted
        assert (await bob.get("/trading/api/settings/")).json()["settings"] == stored

    event = await world.events.wait_for(
        lambda e: (
            isinstance(e, AccountSettingsChanged)
            and e.account_id == account
            and e.settings.risk_template.value == "MODERATE"
        )
    )
    assert isinstance(event, AccountSettingsChanged)
    assert event.user_id == "bob"
    assert event.settings.automation_enabled
    assert event.settings.model_dump(mode="json") == stored


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"risk_template": "MODERATE", "automation_offset_cents": 5000}, "automation_offset_cents"),
        ({"risk_template": "MODERATE", "underlyings": []}, "underlyings"),
        ({"risk_template": "MODERATE", "underlyings": ["IWM"]}, "underlyings.0"),
        ({"risk_template": "YOLO"}, "risk_template"),
        ({"risk_template": "MODERATE", "automaton_enabled": True}, "automaton_enabled"),
    ],
)
async def test_bad_settings_are_422_naming_the_field(
    world: World, payload: dict[str, Any], field: str
) -> None:
    async with world.user("bob") as bob:
        response = await bob.put("/trading/api/settings/", json=payload)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["kind"] == "VALIDATION_ERROR"
    assert error["field"] == field


async def test_broker_link_status_never_shows_secrets(world: World) -> None:
    async with world.user("alice") as alice:
        status = (await alice.get("/trading/api/broker-link/")).json()
        assert status["mode"] == "PAPER"
        assert status["linked"] is True
        assert [a["account_number"] for a in status["accounts"]] == [world.accounts["alice"]]
        text = (await alice.get("/trading/api/broker-link/")).text
        assert "secret" not in text
        assert "refresh" not in text
        # Live links in a paper system would never be used; wrong credentials are refused.
        response = await alice.put("/trading/api/broker-link/", json={"mode": "LIVE"})
        assert response.status_code == 422
        assert error_of(response)["field"] == "mode"
        response = await alice.put(
            "/trading/api/broker-link/",
            json={"mode": "PAPER", "client_secret": "nope", "refresh_token": "nope"},
        )
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["kind"] == "AUTH_FAILED"
        assert "nope" not in response.text


# --- the trading workflow ----------------------------------------------------------------


async def test_generate_returns_the_suggestion_and_validate_trade_risk_checks_it(
    world: World,
) -> None:
    async with world.user("alice") as alice:
        view = await generate(alice)
        suggestion = view["suggestion"]
        assert view["status"] == "PENDING"
        assert suggestion["underlying"] == "QQQ"
        assert suggestion["width"] == "9"  # $100,000 of buying power
        assert len(suggestion["spreads"]) == 3
        for key in ("max_risk", "max_profit", "total_mid_credit", "expiration", "iv_rank"):
            assert key in suggestion
        suggestion_id = suggestion["suggestion_id"]

        listed = (await alice.get("/trading/api/suggestions/")).json()["suggestions"]
        assert suggestion_id in [v["suggestion"]["suggestion_id"] for v in listed]

        checked_view = await checked(alice, suggestion_id)
        assert checked_view["risk_check_passed"] is True
        response = await alice.post(
            "/trading/api/validate-trade-risk/", json={"suggestion_id": suggestion_id}
        )
        assert response.status_code == 200, response.text
        verdict = response.json()
        assert verdict["valid"] is True
        assert verdict["requires_confirmation"] is False
        assert verdict["max_risk"] == checked_view["assessment"]["trade_max_risk"]

        budget = (await alice.get("/trading/api/risk-budget/")).json()["budget"]
        assert budget["template"] == "CONSERVATIVE"
        assert budget["buying_power"] == "100000.00"


async def test_execute_with_an_unconfirmed_warning_is_refused(world: World) -> None:
    async with world.user("carol") as carol:
        suggestion_id = (await generate(carol))["suggestion"]["suggestion_id"]
        view = await checked(carol, suggestion_id)
        assert view["assessment"]["warning_level"] == "WARNING"

        verdict = (
            await carol.post(
                "/trading/api/validate-trade-risk/", json={"suggestion_id": suggestion_id}
            )
        ).json()
        assert verdict["valid"] is True
        assert verdict["requires_confirmation"] is True
        assert verdict["warning"]

        url = f"/trading/api/senex_trident/suggestions/{suggestion_id}/execute/"
        response = await carol.post(url, json={})
        assert response.status_code == 409
        error = error_of(response)
        assert error["kind"] == "RISK_WARNING_UNCONFIRMED"
        assert error["details"]["warning_level"] == "WARNING"
        # Nothing was approved: the suggestion is still pending.
        assert (await checked(carol, suggestion_id))["status"] == "PENDING"


async def test_reject(world: World) -> None:
    async with world.user("alice") as alice:
        suggestion_id = (await generate(alice))["suggestion"]["suggestion_id"]
        url = f"/trading/api/senex_trident/suggestions/{suggestion_id}/reject/"
        response = await alice.post(url, json={"reason": "not today"})
        assert response.status_code == 200, response.text
        assert response.json()["suggestion"]["status"] == "REJECTED"
        # Rejecting (or executing) it again is a conflict with its state.
        response = await alice.post(url)
        assert response.status_code == 409
        assert error_of(response)["kind"] == "INVALID_STATE"
        response = await alice.post(url.replace("/reject/", "/execute/"))
        assert response.status_code == 409


async def test_another_users_ids_and_accounts_are_404(world: World) -> None:
    async with world.user("alice") as alice:
        view = await generate(alice)
    suggestion_id = view["suggestion"]["suggestion_id"]
    alices_account = world.accounts["alice"]
    async with world.user("bob") as bob:
        for method, url in (
            ("GET", f"/trading/api/suggestions/{suggestion_id}/"),
            ("POST", f"/trading/api/senex_trident/suggestions/{suggestion_id}/execute/"),
            ("POST", f"/trading/api/senex_trident/suggestions/{suggestion_id}/reject/"),
            ("GET", f"/trading/api/suggestions/{uuid4()}/"),
            ("GET", f"/trading/api/risk-budget/?account={alices_account}"),
            ("GET", f"/trading/api/settings/?account={alices_account}"),
            ("GET", f"/trading/api/audit/events?account={alices_account}"),
            ("GET", f"/trading/api/suggestions/?account={alices_account}"),
            ("GET", "/trading/api/risk-budget/?account=NOSUCH1"),
        ):
            response = await bob.request(method, url)
            assert response.status_code == 404, (url, response.text)
            assert error_of(response)["kind"] == "NOT_FOUND"
        # An account that does not exist and one of another user answer alike.
        a = error_of(await bob.get(f"/trading/api/risk-budget/?account={alices_account}"))
        b = error_of(await bob.get("/trading/api/risk-budget/?account=NOSUCH1"))
        assert a["message"].replace(alices_account, "X") == b["message"].replace("NOSUCH1", "X")
    # Alice's suggestion is untouched.
    async with world.user("alice") as alice:
        assert (await checked(alice, suggestion_id))["status"] == "PENDING"


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "field"),
    [
        ("POST", GENERATE, {"symbol": "IWM"}, 422, "symbol"),
        ("POST", GENERATE, {}, 422, "symbol"),
        ("POST", GENERATE, {"symbol": "QQQ", "strategy": "x"}, 422, "strategy"),
        ("POST", GENERATE, "not json", 400, "body"),
        (
            "POST",
            f"/trading/api/senex_trident/suggestions/{uuid4()}/execute/",
            {"custom_credit": -1},
            422,
            "custom_credit",
        ),
        (
            "POST",
            f"/trading/api/senex_trident/suggestions/{uuid4()}/execute/",
            {"confirm_warnings": True},
            422,
            "confirm_warnings",
        ),
        ("POST", "/trading/api/senex_trident/suggestions/42/reject/", {}, 422, "suggestion_id"),
        ("GET", "/trading/api/order-status/not-a-uuid/", None, 422, "order_id"),
        ("GET", "/trading/api/market/IWM/", None, 422, "symbol"),
        ("GET", "/trading/api/audit/events?limit=0", None, 422, "limit"),
        ("GET", "/trading/api/audit/events?since=2025-06-03T10:00:00", None, 422, "since"),
        (
            "POST",
            "/trading/api/validate-trade-risk/",
            {"suggestion_id": "x"},
            422,
            "suggestion_id",
        ),
    ],
)
async def test_bad_payloads_name_the_field(
    world: World, method: str, url: str, payload: Any, status: int, field: str
) -> None:
    async with world.user("alice") as alice:
        if isinstance(payload, str):
            response = await alice.request(
                method, url, content=payload, headers={"content-type": "application/json"}
            )
        else:
            response = await alice.request(method, url, json=payload)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["kind"] == "VALIDATION_ERROR"
    assert error["field"] == field


async def test_services_not_running_answer_service_unavailable(world: World) -> None:
    # Execution and the position monitor are not part of this world.
    async with world.user("alice") as alice:
        for method, url in (
            ("GET", "/trading/api/pending-orders/"),
            ("GET", "/trading/api/orders/"),
            ("GET", f"/trading/api/order-status/{uuid4()}/"),
            ("GET", "/trading/api/positions/"),
            ("POST", "/trading/api/sync-positions/"),
        ):
            response = await alice.request(method, url)
            assert response.status_code == 503, (url, response.text)
            assert error_of(response)["kind"] == "SERVICE_UNAVAILABLE"


async def test_market_condition_for_the_chart(world: World) -> None:
    async with world.user("bob") as bob:
        response = await bob.get("/trading/api/market/qqq/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["underlying"] == "QQQ"
    assert body["price"] == "589.00"
    assert len(body["daily_closes"]) == 19
    assert {"upper", "middle", "lower"} <= set(body["bands"])


# --- audit -------------------------------------------------------------------------------


async def test_audit_events_are_only_the_users_own(world: World) -> None:
    alice_account, bob_account = world.accounts["alice"], world.accounts["bob"]
    async with world.user("alice") as alice:
        view = await generate(alice)
        correlation = None

        async def recorded() -> list[dict[str, Any]] | None:
            response = await alice.get(
                "/trading/api/audit/events", params={"type": "SuggestionGenerated", "limit": 1000}
            )
            assert response.status_code == 200, response.text
            events: list[dict[str, Any]] = response.json()["events"]
            ids = [e["data"]["suggestion"]["suggestion_id"] for e in events]
            return events if view["suggestion"]["suggestion_id"] in ids else None

        events = await eventually(recorded)
        assert {e["account_id"] for e in events} == {alice_account}
        assert {e["type"] for e in events} == {"SuggestionGenerated"}
        correlation = events[-1]["data"]["correlation_id"]

        everything = (await alice.get("/trading/api/audit/events?limit=1000")).json()["events"]
        assert {e["account_id"] for e in everything} == {alice_account}
        assert "AccountLinked" in {e["type"] for e in everything}

        chain = await alice.get(f"/trading/api/audit/chain/{correlation}")
        assert chain.status_code == 200, chain.text
        assert {e["data"]["correlation_id"] for e in chain.json()["events"]} == {correlation}

        verify = (await alice.get("/trading/api/audit/verify")).json()
        assert verify["ok"] is True

    async with world.user("bob") as bob:
        mine = (await bob.get("/trading/api/audit/events?limit=1000")).json()["events"]
        assert mine
        assert {e["account_id"] for e in mine} == {bob_account}
        response = await bob.get(f"/trading/api/audit/chain/{correlation}")
        assert response.status_code == 404
        assert error_of(response)["kind"] == "NOT_FOUND"


async def test_openapi_is_served(world: World) -> None:
    async with world.client() as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/auth/login",
        "/trading/api/senex_trident/generate/",
        "/trading/api/senex_trident/suggestions/{suggestion_id}/execute/",
        "/trading/api/validate-trade-risk/",
        "/trading/api/audit/chain/{correlation_id}",
    ):
        assert path in paths
