"""The ASGI app: the TastyTrade REST subset, the ``/sim/`` control API and error shapes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from services.simulator import chains, clock, market, wire
from services.simulator.account_streamer import AccountStreamerSession
from services.simulator.broker import REQUEST_FAULTS, Broker, Fault, iso
from services.simulator.dxlink import DXLinkSession
from services.simulator.errors import ApiError, invalid, not_found
from services.simulator.notifications import SOCKET_KINDS, StreamHub

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
#: How often (real seconds) resting orders are re-examined without any request.
SWEEP_INTERVAL = 0.2
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    413: "request_too_large",
    404: "not_found",
    405: "method_not_allowed",
}
#: Largest request body read (no request of the API comes near it).
MAX_BODY_BYTES = 1 << 20
#: Ids live in SQLite INTEGER columns (signed 64-bit).
_MAX_ID = 1 << 63


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response (orjson, so Decimals must already be strings)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def data(payload: Any, status: int = 200, **extra: Any) -> Response:
    """The API envelope ``{"data": ...}``."""
    return json_response({"data": payload, **extra}, status)


def items(rows: list[dict[str, Any]], **extra: Any) -> Response:
    """A list envelope ``{"data": {"items": [...]}}``."""
    return json_response({"data": {"items": rows}, **extra})


def error_response(error: ApiError) -> Response:
    """An error in TastyTrade's shape."""
    return json_response(error.body(), error.status)


async def read_json(request: Request) -> Any:
    """The request body as JSON; 400 in the API's shape when it is not JSON, 413 when
    it is larger than :data:`MAX_BODY_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    # Drain an oversized body rather than answer mid-upload, so the client reads the 413.
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
    if size > MAX_BODY_BYTES:
        raise ApiError(413, "request_too_large", f"request body over {MAX_BODY_BYTES} bytes")
    raw = b"".join(chunks)
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid("request body is not valid JSON", "invalid_json") from exc


def _path_int(request: Request, name: str) -> int:
    try:
        value = int(request.path_params[name])
    except ValueError as exc:
        raise not_found(f"{name} {request.path_params[name]!r}") from exc
    if not 0 < value < _MAX_ID:
        raise not_found(f"{name} {request.path_params[name]!r}")
    return value


def _symbol(request: Request) -> str:
    symbol = str(request.path_params["symbol"]).upper()
    if symbol not in market.UNDERLYINGS:
        raise not_found(f"Symbol {symbol}")
    return symbol


class SimulatorApp:
    """Routes bound to one :class:`Broker`."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.hub = StreamHub(broker)

    # plumbing

    def guarded(self, handler: Handler) -> Handler:
        """Errors of any kind become the API's error shape; the server never crashes."""

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as error:
                return error_response(error)
            except Exception:
                log.exception("simulator handler failed: %s %s", request.method, request.url.path)
                return error_response(ApiError(500, "internal_error", "internal simulator error"))

        return run

    def authed(self, handler: Callable[[Request, int], Awaitable[Response]]) -> Handler:
        """Bearer-token endpoints: authenticate, apply request faults, advance the market."""

        async def run(request: Request) -> Response:
            customer = self.broker.authenticate(request.headers.get("authorization"))
            fault = self.broker.take_fault(REQUEST_FAULTS)
            if fault is not None:
                if fault.kind == "unauthorized":
                    self.broker.expire_tokens(customer)
                    raise ApiError(401, "token_invalid", "This access token is invalid or expired")
                if fault.kind == "rate-limit":
                    raise ApiError(429, "rate_limited", "Too many requests")
                raise ApiError(500, "internal_error", "Simulated server error")
            self.broker.sweep()
            return await handler(request, customer)

        return self.guarded(run)

    def account_of(self, request: Request, customer: int) -> str:
        """The path's account number, if the customer owns it."""
        return self.broker.owned_account(customer, str(request.path_params["account"]))

    # auth

    async def oauth_token(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or body.get("grant_type") != "refresh_token":
            raise ApiError(400, "invalid_request", "grant_type must be refresh_token")
        secret, refresh = body.get("client_secret"), body.get("refresh_token")
        if not isinstance(secret, str) or not isinstance(refresh, str):
            raise ApiError(401, "invalid_grant", "Invalid client secret or refresh token")
        token, lifetime = self.broker.issue_token(secret, refresh)
        return json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
        )

    async def validate(self, request: Request, customer: int) -> Response:
        return data({"id": str(customer)}, 201)

    async def customer_me(self, request: Request, customer: int) -> Response:
        row = self.broker.store.customer(customer)
        if row is None:
            raise not_found("Customer")
        return data(
            {
                "id": f"me-{row.id}",
                "first-name": row.name,
                "last-name": "Simulated",
                "email": f"customer{row.id}@senex.invalid",
                "has-industry-affiliation": False,
                "has-listed-affiliation": False,
                "has-political-affiliation": False,
            }
        )

    # accounts

    async def accounts(self, request: Request, customer: int) -> Response:
        rows = self.broker.store.accounts(customer)
        return items([{"account": wire.account(r), "authority-level": "owner"} for r in rows])

    async def account(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        row = self.broker.store.account(number)
        assert row is not None
        return data(wire.account(row))

    async def balances(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        currency = request.path_params.get("currency", "USD")
        if currency != "USD":
            raise not_found(f"Balance in {currency}")
        return data(wire.balance(number, self.broker.account_view(number), self.broker.now()))

    async def positions(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        underlyings = request.query_params.getlist("underlying-symbol[]")
        symbol = request.query_params.get("symbol")
        rows = [
            wire.position(p, self.broker)
            for p in self.broker.store.positions(number)
            if (not symbol or p.symbol == symbol)
        ]
        if underlyings:
            rows = [r for r in rows if r["underlying-symbol"] in underlyings]
        return items(rows)

    # orders

    async def dry_run(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        return data(self.broker.dry_run(number, await read_json(request)), 201)

    async def place(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        result, fault = self.broker.place(number, await read_json(request))
        if fault is not None and fault.kind == "timeout":
            # Accepted and recorded; the answer comes too late for the client.
            await asyncio.sleep(
                fault.seconds
                if fault.seconds is not None
                else self.broker.settings.timeout_hold_seconds
            )
        return data(result, 201)

    async def replace(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        order_id = _path_int(request, "order_id")
        return data(self.broker.replace(number, order_id, await read_json(request)))

    async def cancel(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        return data(self.broker.cancel(number, _path_int(request, "order_id")))

    async def order(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        return data(self.broker.order(number, _path_int(request, "order_id")))

    async def live_orders(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        return items(self.broker.orders(number, ("Received", "Live")))

    async def order_history(self, request: Request, customer: int) -> Response:
        number = self.account_of(request, customer)
        query = request.query_params
        statuses = tuple(query.getlist("status[]"))
        rows = self.broker.orders(number, statuses)
        if underlying := query.get("underlying-symbol"):
            rows = [r for r in rows if r["underlying-symbol"] == underlying]
        if query.get("sort") == "Asc":
            rows.reverse()
        try:
            per_page = max(1, min(int(query.get("per-page", "50")), 250))
            offset = max(0, int(query.get("page-offset", "0")))
        except ValueError as exc:
            raise invalid("per-page and page-offset must be integers") from exc
        pages = max(1, -(-len(rows) // per_page))
        page = rows[offset * per_page : (offset + 1) * per_page]
        return items(
            page,
            pagination={
                "per-page": per_page,
                "page-offset": offset,
                "item-offset": offset * per_page,
                "total-items": len(rows),
                "total-pages": pages,
                "current-item-count": len(page),
            },
        )

    # instruments and market data

    async def equity(self, request: Request, customer: int) -> Response:
        return data(wire.equity(_symbol(request)))

    async def equity_option(self, request: Request, customer: int) -> Response:
        occ = str(request.path_params["occ"])
        option = chains.parse_occ(occ)
        now = self.broker.now()
        listed = {e.day: e.kind for e in chains.expirations(now)}
        if (
            option is None
            or option.root not in market.UNDERLYINGS
            or option.expiration not in listed
        ):
            raise not_found(f"Option {occ}")
        return data(wire.option(option, listed[option.expiration], now))

    async def nested_chain(self, request: Request, customer: int) -> Response:
        symbol = _symbol(request)
        return items([wire.nested_chain(self.broker.settings.seed, symbol, self.broker.now())])

    async def flat_chain(self, request: Request, customer: int) -> Response:
        symbol = _symbol(request)
        return items(wire.flat_chain(self.broker.settings.seed, symbol, self.broker.now()))

    async def market_metrics(self, request: Request, customer: int) -> Response:
        raw = request.query_params.get("symbols", "")
        symbols = [s.strip().upper() for s in raw.split(",") if s.strip()]
        now = self.broker.now()
        return items(
            [wire.metrics(self.broker, s, now) for s in symbols if s in market.UNDERLYINGS]
        )

    async def market_data_one(self, request: Request, customer: int) -> Response:
        symbol = str(request.path_params["symbol"])
        return data(self._market_data([symbol])[0]) if self._known(symbol) else _missing(symbol)

    async def market_data_by_type(self, request: Request, customer: int) -> Response:
        query = request.query_params
        symbols = [*query.getlist("equity"), *query.getlist("equity-option")]
        symbols += [*query.getlist("equity[]"), *query.getlist("equity-option[]")]
        return items(self._market_data([s for s in symbols if self._known(s)]))

    def _known(self, symbol: str) -> bool:
        option = chains.parse_occ(symbol)
        if option is not None:
            return option.root in market.UNDERLYINGS
        return symbol in market.UNDERLYINGS

    def _market_data(self, symbols: list[str]) -> list[dict[str, Any]]:
        now = self.broker.now()
        return [wire.market_data(self.broker, s, now) for s in symbols]

    # streaming

    async def quote_tokens(self, request: Request, customer: int) -> Response:
        """``GET /api-quote-tokens``: a DXLink token and this simulator's DXLink URL (the
        socket's own address: the Host header keeps the real API's name)."""
        server = request.scope.get("server") or ("127.0.0.1", 80)
        host, port = server[0], server[1]
        return data(
            {
                "token": self.hub.issue_quote_token(customer),
                "dxlink-url": f"ws://{host}:{port}/dxlink",
                "level": "api",
                "issued-at": iso(self.broker.now()),
            }
        )

    async def dxlink_socket(self, websocket: WebSocket) -> None:
        await DXLinkSession(websocket, self.hub).run()

    async def account_socket(self, websocket: WebSocket) -> None:
        await AccountStreamerSession(websocket, self.hub).run()

    async def risk_free_rate(self, request: Request) -> Response:
        return data({"risk-free-rate": str(self.broker.settings.risk_free_rate)})

    # control API (/sim/): loopback only, no auth

    async def sim_health(self, request: Request) -> Response:
        now = self.broker.now()
        return json_response(
            {"status": "ok", "now": iso(now), "market-open": clock.is_market_open(now)}
        )

    async def sim_customers(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response(
                [
                    {
                        "customer-id": c.id,
                        "name": c.name,
                        "accounts": [a.number for a in self.broker.store.accounts(c.id)],
                    }
                    for c in self.broker.store.customers()
                ]
            )
        body = _object(await read_json(request))
        customer, numbers = self.broker.create_customer(
            str(body.get("name", "Customer")),
            _opt_str(body, "client-secret"),
            _opt_str(body, "refresh-token"),
            accounts=_int(body, "accounts", 1, low=1, high=10),
            cash=_decimal(body, "starting-cash", Decimal("100000.00")),
            token_lifetime=_int(body, "token-lifetime", 900, low=1, high=86400),
        )
        return json_response(
            {
                "customer-id": customer.id,
                "name": customer.name,
                "client-secret": customer.client_secret,
                "refresh-token": customer.refresh_token,
                "accounts": numbers,
            },
            201,
        )

    async def sim_expire_tokens(self, request: Request) -> Response:
        body = _object(await read_json(request))
        customer = body.get("customer-id")
        if customer is not None and not isinstance(customer, int):
            raise invalid("customer-id must be an integer")
        self.broker.expire_tokens(customer)
        return json_response({"expired": True})

    async def sim_config(self, request: Request) -> Response:
        body = _object(await read_json(request))
        if "fill-delay-seconds" in body:
            delay = body["fill-delay-seconds"]
            if not isinstance(delay, int | float) or delay < 0:
                raise invalid("fill-delay-seconds must be a non-negative number")
            self.broker.set_fill_delay(float(delay))
        if "token-lifetime" in body:
            lifetime = _int(body, "token-lifetime", 900, low=1, high=86400)
            for c in self.broker.store.customers():
                if body.get("customer-id") in (None, c.id):
                    self.broker.store.set_token_lifetime(c.id, lifetime)
        return json_response({"fill-delay-seconds": self.broker.fill_delay})

    async def sim_clock(self, request: Request) -> Response:
        if request.method == "PUT":
            body = _object(await read_json(request))
            at = _opt_time(body, "time")
            speed = body.get("speed")
            if speed is not None and (not isinstance(speed, int | float) or speed < 0):
                raise invalid("speed must be a non-negative number")
            self.broker.sim_clock.set(at, None if speed is None else float(speed))
            self.broker.save_clock()
            self.broker.sweep()
        now = self.broker.now()
        return json_response(
            {
                "now": iso(now),
                "speed": self.broker.sim_clock.speed,
                "market-open": clock.is_market_open(now),
            }
        )

    async def sim_price(self, request: Request) -> Response:
        symbol = _symbol(request)
        if request.method == "DELETE":
            self.broker.set_price_path(symbol, [])
        elif request.method == "PUT":
            body = _object(await read_json(request))
            if "path" in body:
                raw = body["path"]
                if not isinstance(raw, list) or not raw:
                    raise invalid("path must be a non-empty list of {at, price}")
                points = [
                    market.PricePoint(
                        _opt_time(_object(p), "at") or self.broker.now(),
                        _decimal(_object(p), "price", None),
                    )
                    for p in raw
                ]
            else:
                points = [market.PricePoint(self.broker.now(), _decimal(body, "price", None))]
            self.broker.set_price_path(symbol, points)
            self.broker.sweep()
        price = self.broker.spot(symbol)
        bid, ask = market.underlying_quote(price)
        return json_response(
            {"symbol": symbol, "price": str(price), "bid": str(bid), "ask": str(ask)}
        )

    async def sim_quote(self, request: Request) -> Response:
        occ = str(request.path_params["occ"])
        option = chains.parse_occ(occ)
        if option is None or option.root not in market.UNDERLYINGS:
            raise not_found(f"Option {occ}")
        quote = self.broker.option_quote(option)
        return json_response(
            {
                "symbol": option.occ,
                "bid": str(quote.bid),
                "ask": str(quote.ask),
                "mid": str(quote.mid),
                "theo": str(quote.theo),
                "iv": round(quote.iv, 6),
            }
        )

    async def sim_faults(self, request: Request) -> Response:
        if request.method == "POST":
            body = _object(await read_json(request))
            seconds = body.get("seconds")
            if seconds is not None and (not isinstance(seconds, int | float) or seconds < 0):
                raise invalid("seconds must be a non-negative number")
            self.broker.add_fault(
                Fault(
                    kind=str(body.get("kind")),
                    reason=str(body.get("reason", "Rejected by simulator")),
                    seconds=None if seconds is None else float(seconds),
                    remaining=_int(body, "count", 1, low=1, high=1000),
                    as_error=bool(body.get("as-error", False)),
                )
            )
        elif request.method == "DELETE":
            self.broker.faults.clear()
        return json_response(
            [
                {"kind": f.kind, "remaining": f.remaining, "reason": f.reason}
                for f in self.broker.faults
            ]
        )

    async def sim_close_position(self, request: Request) -> Response:
        number = str(request.path_params["account"])
        body = _object(await read_json(request))
        symbol = body.get("symbol")
        if not isinstance(symbol, str):
            raise invalid("symbol is required")
        quantity = body.get("quantity")
        if quantity is not None and (not isinstance(quantity, int) or quantity <= 0):
            raise invalid("quantity must be a positive integer")
        self.broker.close_externally(number, symbol, quantity)
        return json_response({"closed": symbol})

    async def sim_sockets(self, request: Request) -> Response:
        if request.method == "POST":
            kind = _object(await read_json(request)).get("kind", "all")
            if kind not in (*SOCKET_KINDS, "all"):
                raise invalid(f"kind must be one of {', '.join((*SOCKET_KINDS, 'all'))}")
            return json_response({"kind": kind, "dropped": self.hub.drop(kind)})
        return json_response({k: self.hub.count(k) for k in SOCKET_KINDS})

    async def sim_sweep(self, request: Request) -> Response:
        self.broker.sweep()
        return json_response({"now": iso(self.broker.now())})

    # assembly

    def routes(self) -> list[Route | WebSocketRoute]:
        """Every route; raw OCC symbols (with spaces) arrive decoded in path params."""
        a, g = self.authed, self.guarded
        acct = "/accounts/{account}"
        return [
            Route("/oauth/token", g(self.oauth_token), methods=["POST"]),
            Route("/sessions/validate", a(self.validate), methods=["POST"]),
            Route("/customers/me", a(self.customer_me), methods=["GET"]),
            Route("/customers/me/accounts", a(self.accounts), methods=["GET"]),
            Route("/customers/me/accounts/{account}", a(self.account), methods=["GET"]),
            Route(acct + "/balances", a(self.balances), methods=["GET"]),
            Route(acct + "/balances/{currency}", a(self.balances), methods=["GET"]),
            Route(acct + "/positions", a(self.positions), methods=["GET"]),
            Route(acct + "/orders/dry-run", a(self.dry_run), methods=["POST"]),
            Route(acct + "/orders/live", a(self.live_orders), methods=["GET"]),
            Route(acct + "/orders", a(self.place), methods=["POST"]),
            Route(acct + "/orders", a(self.order_history), methods=["GET"]),
            Route(acct + "/orders/{order_id}", a(self.order), methods=["GET"]),
            Route(acct + "/orders/{order_id}", a(self.replace), methods=["PUT"]),
            Route(acct + "/orders/{order_id}", a(self.cancel), methods=["DELETE"]),
            Route("/instruments/equities/{symbol}", a(self.equity), methods=["GET"]),
            Route("/instruments/equity-options/{occ}", a(self.equity_option), methods=["GET"]),
            Route("/option-chains/{symbol}/nested", a(self.nested_chain), methods=["GET"]),
            Route("/option-chains/{symbol}", a(self.flat_chain), methods=["GET"]),
            Route("/market-metrics", a(self.market_metrics), methods=["GET"]),
            Route("/market-data/by-type", a(self.market_data_by_type), methods=["GET"]),
            Route("/market-data/{kind}/{symbol}", a(self.market_data_one), methods=["GET"]),
            Route(
                "/margin-requirements-public-configuration",
                g(self.risk_free_rate),
                methods=["GET"],
            ),
            Route("/sim/health", g(self.sim_health), methods=["GET"]),
            Route("/sim/customers", g(self.sim_customers), methods=["GET", "POST"]),
            Route("/sim/tokens/expire", g(self.sim_expire_tokens), methods=["POST"]),
            Route("/sim/config", g(self.sim_config), methods=["PUT"]),
            Route("/sim/clock", g(self.sim_clock), methods=["GET", "PUT"]),
            Route("/sim/prices/{symbol}", g(self.sim_price), methods=["GET", "PUT", "DELETE"]),
            Route("/sim/quotes/{occ}", g(self.sim_quote), methods=["GET"]),
            Route("/sim/faults", g(self.sim_faults), methods=["GET", "POST", "DELETE"]),
            Route(
                "/sim/accounts/{account}/positions/close",
                g(self.sim_close_position),
                methods=["POST"],
            ),
            Route("/sim/sweep", g(self.sim_sweep), methods=["POST"]),
            Route("/sim/sockets", g(self.sim_sockets), methods=["GET"]),
            Route("/sim/sockets/drop", g(self.sim_sockets), methods=["POST"]),
            Route("/api-quote-tokens", a(self.quote_tokens), methods=["GET"]),
            WebSocketRoute("/dxlink", self.dxlink_socket),
            # The account streamer: "/" on prod/cert hosts, "/api/notifications" on paper.
            WebSocketRoute("/", self.account_socket),
            WebSocketRoute("/api/notifications", self.account_socket),
        ]


def _missing(symbol: str) -> Response:
    return error_response(not_found(f"Symbol {symbol}"))


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("body must be a JSON object")
    return body


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise invalid(f"{key} must be a non-empty string")
    return value


def _int(body: dict[str, Any], key: str, default: int, *, low: int, high: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid(f"{key} must be an integer from {low} to {high}")
    return value


def _decimal(body: dict[str, Any], key: str, default: Decimal | None) -> Decimal:
    if key not in body and default is not None:
        return default
    try:
        value = Decimal(str(body[key]))
    except (KeyError, InvalidOperation) as exc:
        raise invalid(f"{key} must be a decimal number") from exc
    if not value.is_finite() or value <= 0:
        raise invalid(f"{key} must be positive")
    return value


def _opt_time(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"{key} must be an ISO-8601 instant") from exc
    if parsed.tzinfo is None:
        raise invalid(f"{key} must carry a timezone")
    return parsed


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = _STATUS_CODES.get(status, "error")
    message = f"{request.method} {request.url.path}: " + (
        exc.detail if isinstance(exc, HTTPException) else "internal simulator error"
    )
    return error_response(ApiError(status, code, message))


def create_app(broker: Broker) -> Starlette:
    """The simulator's ASGI app, sweeping resting orders in the background while it runs."""
    simulator = SimulatorApp(broker)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        simulator.hub.bind_loop()

        async def sweep_forever() -> None:
            ticks = 0
            while True:
                await asyncio.sleep(SWEEP_INTERVAL)
                try:
                    broker.sweep()
                    ticks += 1
                    if ticks % 25 == 0:
                        broker.save_clock()
                except Exception:
                    log.exception("background sweep failed")

        task = asyncio.create_task(sweep_forever())
        try:
            yield
        finally:
            simulator.hub.drop("all")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            broker.save_clock()

    return Starlette(
        routes=simulator.routes(),
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
        lifespan=lifespan,
    )
