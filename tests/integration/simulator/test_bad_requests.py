"""Hostile and malformed requests never crash or hang the simulator.

Complements ``test_malformed_requests_get_error_shape`` (bad order fields through the SDK's
client) with raw HTTP: random bytes, wrong content types, ~5 MB bodies, broken JSON, absurd
numbers, wrong methods and path traversal. Each must get a 4xx in TastyTrade's error shape
``{"error": {"code", "message"}}``, and the server must still be healthy afterwards.
Requests go through ``http.client`` so that paths reach the server exactly as written.
"""

from __future__ import annotations

import http.client
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from tastytrade import Account

from services.simulator.server import SimulatorServer
from tests.simulator_fixtures import sdk_session

ACCT = "/accounts/5WT00001"
SEED = 20250603
HUGE = 5 * 1024 * 1024
#: A listed expiration on the fixture's start day (SPY, Friday 2025-06-20).
LEG = {
    "instrument-type": "Equity Option",
    "symbol": "SPY   250620P00600000",
    "action": "Sell to Open",
    "quantity": 1,
}


@dataclass
class Bad:
    """One malformed request and the status it must get (None: any 4xx)."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    chunked: bool = False

    def __str__(self) -> str:
        size = 0 if self.body is None else len(self.body)
        return f"{self.method} {self.path} ({size} bytes, {self.headers})"


#: Endpoints that read a JSON body (authenticated ones need a token).
JSON_ENDPOINTS: list[tuple[str, str, bool]] = [
    ("POST", "/oauth/token", False),
    ("POST", ACCT + "/orders", True),
    ("POST", ACCT + "/orders/dry-run", True),
    ("POST", "/sim/customers", False),
    ("POST", "/sim/faults", False),
    ("POST", "/sim/tokens/expire", False),
    ("POST", "/sim/accounts/5WT00001/positions/close", False),
    ("PUT", "/sim/clock", False),
    ("PUT", "/sim/config", False),
    ("PUT", "/sim/prices/SPY", False),
]


def random_non_json(rng: random.Random) -> bytes:
    """Seeded random bytes that are not a JSON document."""
    while True:
        body = rng.randbytes(rng.randint(1, 4096))
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            return body


def order(**fields: object) -> bytes:
    return orjson.dumps({"order-type": "Limit", "price-effect": "Credit", **fields})


def bad_requests() -> Iterator[Bad]:
    rng = random.Random(SEED)
    # Random bytes to every endpoint that parses JSON.
    for method, path, _ in JSON_ENDPOINTS:
        for _ in range(3):
            yield Bad(method, path, random_non_json(rng), {"Content-Type": "application/json"})
    # Wrong content types: forms, multipart, plain text, XML.
    for content_type, body in [
        ("application/x-www-form-urlencoded", b"name=Mallory&accounts=2"),
        ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="a"'),
        ("text/plain", b"hello simulator"),
        ("application/xml", b"<order><price>1</price></order>"),
    ]:
        for method, path, _ in JSON_ENDPOINTS:
            yield Bad(method, path, body, {"Content-Type": content_type})
    # Bodies of about 5 MB, declared and chunked, JSON or not: refused without parsing.
    yield Bad("POST", "/sim/customers", orjson.dumps({"name": "x" * HUGE}), status=413)
    yield Bad(
        "POST", ACCT + "/orders", order(price="1.00", legs=[LEG] * 4, pad="x" * HUGE), status=413
    )
    yield Bad("POST", "/oauth/token", rng.randbytes(HUGE), status=413)
    yield Bad("PUT", "/sim/clock", b"[" * HUGE, status=413, chunked=True)
    # Invalid JSON, and JSON of the wrong shape.
    for body in [
        b"{",
        b'{"name": }',
        b'{"price": NaN}',
        b"[" * 100_000,
        b'"unterminated',
        b"\x00",
        b"\xef\xbb\xbf{}",
        b"null",
        b'"a string"',
        b"[]",
        b"12",
    ]:
        yield Bad("POST", "/sim/customers", body)
        yield Bad("POST", ACCT + "/orders", body)
    # Absurd numbers and symbols.
    yield Bad("POST", ACCT + "/orders", order(price="1e999999", legs=[LEG]), status=422)
    yield Bad("POST", ACCT + "/orders", order(price="1", legs=[{**LEG, "quantity": "1e999999"}]))
    yield Bad("POST", ACCT + "/orders", order(price="1", legs=[{**LEG, "quantity": -1}]))
    zero_strike = "SPY   250620P00000000"
    yield Bad(
        "POST", ACCT + "/orders/dry-run", order(price="1", legs=[{**LEG, "symbol": zero_strike}])
    )
    yield Bad("GET", "/sim/quotes/SPY%20%20%20250620P00000000", status=404)
    yield Bad("GET", "/market-data/Equity%20Option/SPY%20%20%20250620P00000000", status=404)
    yield Bad("GET", ACCT + "/orders/99999999999999999999999", status=404)
    yield Bad("GET", ACCT + "/orders/-1", status=404)
    yield Bad("DELETE", ACCT + "/orders/0", status=404)
    yield Bad("PUT", "/sim/clock", b'{"time": "9999-99-99T99:99:99Z"}', status=400)
    yield Bad("PUT", "/sim/clock", b'{"speed": 1e999}', status=400)
    yield Bad("PUT", "/sim/config", b'{"token-lifetime": 1e400}', status=400)
    # Wrong methods.
    for method, path in [
        ("PATCH", ACCT + "/orders"),
        ("DELETE", "/sim/health"),
        ("PUT", "/oauth/token"),
        ("GET", "/oauth/token"),
        ("POST", "/sim/clock"),
        ("GET", "/sim/sweep"),
        ("DELETE", "/customers/me"),
        ("PATCH", "/sim/prices/SPY"),
    ]:
        yield Bad(method, path, status=405)
    # Path traversal, encoded and not, and other odd paths.
    for method, path in [
        ("GET", "/accounts/..%2F..%2Fsim%2Fhealth/balances"),
        ("GET", "/accounts/../sim/health"),
        ("GET", "/accounts/..%2F..%2Fetc%2Fpasswd/positions"),
        ("GET", "/%2e%2e/%2e%2e/etc/passwd"),
        ("GET", "/instruments/equity-options/..%2F..%2Fetc%2Fpasswd"),
        ("GET", "/instruments/equities/..%2F..%2Fsim.sqlite3"),
        ("GET", "/sim/prices/..%2F..%2Fsim.sqlite3"),
        ("GET", "/sim/quotes/%00"),
        ("GET", "/market-data/Equity/..%2F.."),
        ("POST", "/sim/accounts/..%2F..%2F5WT00001/positions/close"),
        ("GET", "//sim//health"),
        ("GET", "/sim/health/../../sim.sqlite3"),
    ]:
        close_body = b'{"symbol": "SPY   250620P00600000"}' if method == "POST" else None
        yield Bad(method, path, close_body)


BAD = list(bad_requests())


def send(server: SimulatorServer, bad: Bad, token: str) -> tuple[int, bytes]:
    """Send ``bad`` as written; (status, body). A hang fails after the socket timeout."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        headers = {"Authorization": f"Bearer {token}", **bad.headers}
        body = bad.body
        if bad.chunked and body is not None:
            chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
            connection.request(bad.method, bad.path, chunks, headers, encode_chunked=True)
        else:
            connection.request(bad.method, bad.path, body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def token_for(server: SimulatorServer) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    credentials = {
        "grant_type": "refresh_token",
        "client_secret": server.settings.client_secret,
        "refresh_token": server.settings.refresh_token,
    }
    connection.request("POST", "/oauth/token", orjson.dumps(credentials))
    token: str = orjson.loads(connection.getresponse().read())["access_token"]
    connection.close()
    return token


async def test_malformed_requests_get_a_4xx_in_the_api_error_shape_and_the_server_survives(
    simulator: SimulatorServer,
) -> None:
    token = token_for(simulator)
    failures: list[str] = []
    for bad in BAD:
        status, raw = send(simulator, bad, token)
        try:
            error = orjson.loads(raw)["error"]
            shaped = isinstance(error["code"], str) and isinstance(error["message"], str)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            shaped = False
        expected = status == bad.status if bad.status else 400 <= status < 500
        if not (expected and shaped):
            failures.append(f"{bad} -> {status} {raw[:120]!r}")
    assert failures == []

    health = http.client.HTTPConnection("127.0.0.1", simulator.port, timeout=10)
    health.request("GET", "/sim/health")
    assert orjson.loads(health.getresponse().read())["status"] == "ok"
    health.close()
    session = sdk_session(simulator)
    account = await Account.get(session, "5WT00001")
    assert await account.get_live_orders(session) == []
    assert [c.account_number for c in await Account.get(session)] == ["5WT00001"]


def test_the_batch_covers_every_kind_of_malformed_request() -> None:
    assert len(BAD) > 100
    assert sum(1 for b in BAD if b.status == 413) == 4
    assert {b.method for b in BAD} >= {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert any(".." in b.path for b in BAD)
