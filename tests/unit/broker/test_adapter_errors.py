"""The adapter over a scripted HTTP transport: error kinds, 401 refresh-and-retry, lookups."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerCredentials, RateSource
from libs.broker.settings import BrokerSettings
from libs.contracts.errors import (
    ApiError,
    AuthFailed,
    BrokerTimeout,
    BrokerUnavailable,
    InsufficientBuyingPower,
    NotFound,
    OrderRejectedError,
    RateLimited,
    ValidationFailed,
)
from libs.contracts.execution import OrderAction, OrderLeg, TimeInForce
from libs.contracts.symbols import OccSymbol
from libs.domain.orders import OrderRequest
from libs.runtime.settings import TradingMode
from tests.unit.broker import wire

CREDENTIALS = BrokerCredentials(
    client_secret=SecretStr("top-secret"), refresh_token=SecretStr("refresh-me")
)
Handler = Callable[[httpx2.Request], httpx2.Response | None]


class FakeBroker:
    """Answers like the broker; ``override`` may answer a request first."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.tokens = 0
        self.override: Handler | None = None
        self.history: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        path = request.url.path
        if path == "/oauth/token":
            self.tokens += 1
            return httpx2.Response(
                200, json={"access_token": f"tok-{self.tokens}", "expires_in": 900}
            )
        if path == f"/customers/me/accounts/{wire.ACCOUNT}":
            return httpx2.Response(200, json={"data": wire.account()})
        if path == "/customers/me/accounts":
            return httpx2.Response(200, json={"data": {"items": [{"account": wire.account()}]}})
        if path.endswith("/balances/USD"):
            return httpx2.Response(200, json={"data": wire.balance()})
        if path.endswith("/orders/live"):
            return httpx2.Response(200, json={"data": {"items": []}})
        if path.endswith("/orders") and request.method == "GET":
            return httpx2.Response(200, json={"data": {"items": self.history}})
        if path.endswith("/orders") and request.method == "POST":
            body = json.loads(request.content)
            tag = body["external-identifier"]
            return httpx2.Response(
                201,
                json={
                    "data": {
                        "order": wire.order(tag=tag),
                        "buying-power-effect": wire.buying_power_effect(),
                    }
                },
            )
        if path == "/margin-requirements-public-configuration":
            return httpx2.Response(200, json={"data": {"risk-free-rate": "0.0425"}})
        return httpx2.Response(404, json={"error": {"code": "not_found", "message": path}})

    def bearer_calls(self, path_end: str) -> list[str]:
        return [
            r.headers.get("authorization", "")
            for r in self.requests
            if r.url.path.endswith(path_end)
        ]


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def adapter(broker: FakeBroker) -> BrokerAdapter:
    settings = BrokerSettings(mode=TradingMode.LIVE)
    return BrokerAdapter(
        settings,
        StaticCredentials({wire.ACCOUNT: CREDENTIALS}),
        transport=httpx2.MockTransport(broker),
    )


def order_request() -> OrderRequest:
    return OrderRequest(
        underlying="SPY",
        legs=(
            OrderLeg(symbol=OccSymbol(wire.PUT), action=OrderAction.SELL_TO_OPEN, quantity=1),
            OrderLeg(symbol=OccSymbol(wire.LONG_PUT), action=OrderAction.BUY_TO_OPEN, quantity=1),
        ),
        limit_price=Decimal("1.25"),
        time_in_force=TimeInForce.DAY,
        client_tag="sx-0123",
    )


def answer_once(path_end: str, response: httpx2.Response) -> Handler:
    used = False

    def handler(request: httpx2.Request) -> httpx2.Response | None:
        nonlocal used
        if not used and request.url.path.endswith(path_end):
            used = True
            return response
        return None

    return handler


async def test_token_is_fetched_once_and_sent_as_bearer(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    await adapter.get_balances(wire.ACCOUNT)
    await adapter.get_balances(wire.ACCOUNT)
    assert broker.tokens == 1
    assert broker.bearer_calls("/balances/USD") == ["Bearer tok-1", "Bearer tok-1"]


async def test_token_is_refreshed_before_it_expires(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    await adapter.get_balances(wire.ACCOUNT)
    adapter.expire_session(wire.ACCOUNT)
    await adapter.get_balances(wire.ACCOUNT)
    assert broker.tokens == 2
    assert broker.bearer_calls("/balances/USD")[-1] == "Bearer tok-2"


async def test_401_refreshes_and_retries_once(adapter: BrokerAdapter, broker: FakeBroker) -> None:
    await adapter.get_balances(wire.ACCOUNT)
    broker.override = answer_once(
        "/balances/USD",
        httpx2.Response(401, json={"error": {"code": "token_invalid", "message": "expired"}}),
    )
    balances = await adapter.get_balances(wire.ACCOUNT)
    assert balances.derivative_buying_power == Decimal("100000.00")
    assert broker.tokens == 2


async def test_401_after_refresh_is_auth_failed(adapter: BrokerAdapter, broker: FakeBroker) -> None:
    def always_401(request: httpx2.Request) -> httpx2.Response | None:
        if request.url.path.endswith("/balances/USD"):
            return httpx2.Response(401, json={"error": {"code": "unauthorized", "message": "no"}})
        return None

    broker.override = always_401
    with pytest.raises(AuthFailed):
        await adapter.get_balances(wire.ACCOUNT)
    assert broker.tokens == 2


async def test_refused_refresh_token_is_auth_failed(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    broker.override = answer_once(
        "/oauth/token",
        httpx2.Response(400, json={"error": {"code": "invalid_grant", "message": "bad token"}}),
    )
    with pytest.raises(AuthFailed, match="invalid_grant"):
        await adapter.get_balances(wire.ACCOUNT)


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RateLimited), (500, ApiError), (503, ApiError), (404, NotFound), (403, AuthFailed)],
)
async def test_http_statuses_map_to_error_kinds(
    adapter: BrokerAdapter, broker: FakeBroker, status: int, error: type[Exception]
) -> None:
    body = {"error": {"code": "e", "message": f"status {status}"}}
    broker.override = answer_once(
        "/balances/USD", httpx2.Response(status, json=body, headers={"Retry-After": "3"})
    )
    with pytest.raises(error) as caught:
        await adapter.get_balances(wire.ACCOUNT)
    if status == 429:
        assert caught.value.details["retry_after"] == "3"  # type: ignore[attr-defined]


async def test_non_json_error_is_api_error(adapter: BrokerAdapter, broker: FakeBroker) -> None:
    broker.override = answer_once("/balances/USD", httpx2.Response(502, text="<html>bad</html>"))
    with pytest.raises(ApiError):
        await adapter.get_balances(wire.ACCOUNT)


async def test_timeout_is_broker_timeout(adapter: BrokerAdapter, broker: FakeBroker) -> None:
    def slow(request: httpx2.Request) -> httpx2.Response | None:
        if request.url.path.endswith("/orders"):
            raise httpx2.ReadTimeout("timed out", request=request)
        return None

    broker.override = slow
    with pytest.raises(BrokerTimeout):
        await adapter.place_order(wire.ACCOUNT, order_request())


async def test_refused_connection_is_broker_unavailable(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response | None:
        raise httpx2.ConnectError("connection refused", request=request)

    broker.override = refuse
    with pytest.raises(BrokerUnavailable):
        await adapter.get_balances(wire.ACCOUNT)


async def test_rejected_order_carries_the_broker_reason(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    broker.override = answer_once(
        "/orders",
        httpx2.Response(422, json=wire.error_body(("invalid_price", "price out of range"))),
    )
    with pytest.raises(OrderRejectedError, match="invalid_price: price out of range") as caught:
        await adapter.place_order(wire.ACCOUNT, order_request())
    assert caught.value.details["broker_codes"] == "invalid_price"


async def test_buying_power_refusal_is_insufficient_buying_power(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    broker.override = answer_once(
        "/orders/dry-run",
        httpx2.Response(
            422, json=wire.error_body(("insufficient_buying_power", "not enough buying power"))
        ),
    )
    with pytest.raises(InsufficientBuyingPower):
        await adapter.dry_run(wire.ACCOUNT, order_request())


async def test_bad_broker_order_id_is_a_validation_error(adapter: BrokerAdapter) -> None:
    with pytest.raises(ValidationFailed):
        await adapter.get_order(wire.ACCOUNT, "abc")


async def test_unknown_account_is_not_found(adapter: BrokerAdapter) -> None:
    with pytest.raises(NotFound):
        await adapter.get_balances("5WT99999")


async def test_lookup_by_tag_searches_history(adapter: BrokerAdapter, broker: FakeBroker) -> None:
    broker.history = [wire.order(7, tag="sx-other"), wire.order(8, status="Filled", tag="sx-me")]
    found = await adapter.find_order_by_client_tag(wire.ACCOUNT, "sx-me")
    assert found is not None
    assert found.broker_order_id == "8"
    assert await adapter.find_order_by_client_tag(wire.ACCOUNT, "sx-none") is None


async def test_risk_free_rate_comes_from_the_broker_without_auth(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    rate = await adapter.get_risk_free_rate(wire.ACCOUNT)
    assert (rate.rate, rate.source) == (Decimal("0.0425"), RateSource.BROKER)
    assert broker.bearer_calls("/margin-requirements-public-configuration") == [""]


async def test_risk_free_rate_falls_back_to_four_and_a_half_percent(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    broker.override = answer_once(
        "/margin-requirements-public-configuration", httpx2.Response(500, text="down")
    )
    rate = await adapter.get_risk_free_rate(wire.ACCOUNT)
    assert (rate.rate, rate.source) == (Decimal("0.045"), RateSource.FALLBACK)


async def test_secrets_stay_out_of_reprs_and_errors(
    adapter: BrokerAdapter, broker: FakeBroker
) -> None:
    broker.override = answer_once(
        "/oauth/token",
        httpx2.Response(400, json={"error": {"code": "invalid_grant", "message": "bad"}}),
    )
    with pytest.raises(AuthFailed) as caught:
        await adapter.get_balances(wire.ACCOUNT)
    session = await adapter.session_for(wire.ACCOUNT)
    texts = [repr(CREDENTIALS), str(CREDENTIALS), repr(adapter), repr(session)]
    texts += [repr(caught.value), str(caught.value), CREDENTIALS.model_dump_json()]
    for text in texts:
        assert "top-secret" not in text
        assert "refresh-me" not in text
