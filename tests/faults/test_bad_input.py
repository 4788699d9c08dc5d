"""Bad input where it enters the gateway: fuzzed WebSocket messages, refused REST requests.

One world for the module (`tests/integration/gateway/world.py`: the gateway in-process
with audit, market data, strategy and risk behind it, users alice, bob and carol).

- WebSocket: hypothesis generates frames (any JSON value, objects with a protocol
  ``type`` and random or malformed fields, wrong types, strings around and over the
  16 KiB frame limit, unknown types, deep nesting, non-JSON text, binary frames) and
  sends them over one socket of bob's. Each must be answered by exactly one ``error``
  (a known kind, never INTERNAL_ERROR, with a message) or by the protocol's answer
  (``pong``, ``subscribed``, a ``suggestion_update``), carrying the frame's ``id`` as
  ``request_id`` when the frame had a usable one; the pure parser of `ws.protocol` is the
  oracle for which. A ping after each frame is still answered (the socket stays open).
  A frame over uvicorn's ``ws_max_size`` (1 MiB) is the one the gateway closes: with
  1009, after which a new socket works.
- REST: requests the gateway must refuse (bad settings, bad custom credits, another
  user's suggestion or account, broker links without usable secrets, a missing or wrong
  CSRF token, no session, a wrong password). Around each one the stored state is read:
  the gateway's tables, the credentials vault, the audit log's head, the business
  stream's last sequence, the events seen on ``senex.evt.>`` and the suggestions' views;
  a refusal must leave all of it as it was.

Neither may make the gateway log an unhandled exception or answer a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx2
import orjson
import psycopg
import pytest
import structlog
from httpx2.websockets import AsyncWebSocketSession, WebSocketDisconnect
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from libs.contracts.errors import ErrorKind
from libs.runtime.bus import BUSINESS_STREAM
from services.gateway.auth import CSRF_HEADER
from services.gateway.ws.protocol import (
    CLIENT_TYPES,
    MAX_FRAME_BYTES,
    ExecuteOrder,
    GenerateSuggestionMessage,
    Incoming,
    Ping,
    ProtocolError,
    SubscribeQuotes,
    UnsubscribeQuotes,
    parse_client_message,
)
from tests.faults.report import FaultEntry
from tests.integration.gateway.world import World, error_of, running_world

pytestmark = pytest.mark.fault

#: Generated WebSocket frames, derandomized (the same ones each run): one socket, ~2 s.
EXAMPLES = 300
#: uvicorn's ``ws_max_size`` in `services.gateway.service`: a larger frame is closed.
WS_MAX_SIZE = 1024 * 1024
CLOSE_MESSAGE_TOO_BIG = 1009
SERVER_TYPES = {
    "subscribed",
    "quote_update",
    "suggestion_update",
    "order.status",
    "position_update",
    "balance_update",
    "notification",
    "error",
    "pong",
}
#: Messages that answer a client frame (pushes are the others).
ANSWERS = {"error", "pong", "subscribed"}
ERROR_KINDS = {k.value for k in ErrorKind}
NOT_A_SUGGESTION = "6a1f3c52-9d0e-4d5e-8a43-5b7f0e2c9d11"
GENERATE = "/trading/api/senex_trident/generate/"


@pytest.fixture(scope="module")
async def world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    async with running_world(server_root, database_url) as w:
        yield w


# --- what the gateway logs ---------------------------------------------------------------


@dataclass
class LogWatch:
    """Log lines of every in-process service (structlog) and of uvicorn (stdlib)."""

    captured: list[MutableMapping[str, Any]]
    caplog: pytest.LogCaptureFixture

    def problems(self) -> list[str]:
        """Unhandled exceptions and 5xx answers logged so far."""
        found = [
            f"{entry.get('log_level')}: {entry.get('event')} {entry.get('error', '')}"
            for entry in self.captured
            if entry.get("log_level") in ("error", "critical", "exception")
            # on_senex's line for a typed error answered with a 5xx
            or entry.get("event") == "request failed"
        ]
        found += [
            f"{r.name} {r.levelname}: {r.getMessage()}"
            for r in self.caplog.records
            if r.levelno >= logging.ERROR or "Exception in ASGI" in r.getMessage()
        ]
        return found


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[LogWatch]:
    with structlog.testing.capture_logs() as captured:
        yield LogWatch(captured, caplog)


# --- WebSocket fuzzing ---------------------------------------------------------------------


@asynccontextmanager
async def socket(world: World, user: str) -> AsyncIterator[AsyncWebSocketSession]:
    """``user``'s socket, opened as the browser opens it (session cookie, own Origin)."""
    async with world.client() as client:
        await world.login(client, user)
        async with client.websocket(
            f"{world.url}/ws",
            headers={"Origin": world.url},
            keepalive_ping_interval_seconds=None,
        ) as ws:
            yield ws


async def receive(ws: AsyncWebSocketSession, timeout: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await ws.receive_text(timeout=timeout))
    return message


def _shape(message: dict[str, Any]) -> None:
    """A server message of the protocol; an error with its kind and message."""
    assert isinstance(message, dict), message
    assert message.get("type") in SERVER_TYPES, message
    if message["type"] == "error":
        assert message["kind"] in ERROR_KINDS, message
        assert message["kind"] != ErrorKind.INTERNAL_ERROR.value, message
        assert isinstance(message["message"], str), message
        assert message["message"], message
        assert message["field"] is None or isinstance(message["field"], str), message
        assert isinstance(message["details"], dict), message


def _json(value: Any) -> str:
    # The stdlib writes integers orjson refuses (beyond 64 bits): more input to refuse.
    return json.dumps(value)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_interesting = st.sampled_from(
    [
        "QQQ",
        "spy",
        "IWM",
        "QQQ   251219P00592000",
        "",
        " ",
        "\x00",
        "senex_trident",
        "-1",
        "0",
        "0.001",
        "1e30",
        "NaN",
        "Infinity",
        NOT_A_SUGGESTION,
        2**64,
        -(2**63),
        1e308,
        ["QQQ"],
        ["qqq", "SPY"],
        [],
        ["not a symbol!"],
        "5WT00001",
        "x" * 65,
    ]
)
_values = st.one_of(
    _interesting,
    _json_values,
    st.integers(1_000, 40_000).map(lambda n: "x" * n),  # around and over 16 KiB
    st.lists(st.from_regex(r"[A-Z]{1,5}", fullmatch=True), min_size=1, max_size=120),
    st.lists(st.text(max_size=8), max_size=150),
)
_field_names = st.sampled_from(
    [
        "id",
        "type",
        "symbols",
        "symbol",
        "strategy",
        "account",
        "suggestion_id",
        "custom_credit",
        "confirm_warning",
        "extra",
    ]
) | st.text(max_size=10)
_types = st.sampled_from(CLIENT_TYPES) | st.sampled_from(CLIENT_TYPES) | _json_values
_objects = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    _types,
    st.dictionaries(_field_names, _values, max_size=4),
) | st.dictionaries(_field_names, _values, max_size=4)


_tickers = st.lists(st.from_regex(r"[A-Za-z]{1,5}", fullmatch=True), min_size=1, max_size=8)
_request_ids = st.none() | st.text(min_size=1, max_size=64)
_account_ids = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
_credits = st.decimals(min_value="0.001", max_value="100", places=3).map(str) | st.floats(
    min_value=0.01, max_value=100
)
#: A valid message of each client type (optional fields drawn or left out).
_valid = st.one_of(
    st.fixed_dictionaries({"type": st.just("ping")}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["subscribe_quotes", "unsubscribe_quotes"]), "symbols": _tickers}
    ),
    st.fixed_dictionaries(
        {"type": st.just("generate_suggestion"), "symbol": st.sampled_from(["QQQ", "spy"])},
        optional={"strategy": st.just("senex_trident"), "account": _account_ids},
    ),
    st.fixed_dictionaries(
        {"type": st.just("execute_order"), "suggestion_id": st.uuids().map(str)},
        optional={"custom_credit": _credits, "confirm_warning": st.booleans()},
    ),
)


@st.composite
def _near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message, its ``id`` drawn, then at most one field broken."""
    message: dict[str, Any] = dict(draw(_valid))
    request_id = draw(_request_ids)
    if request_id is not None:
        message["id"] = request_id
    mutation = draw(st.sampled_from(["none", "none", "drop", "retype", "extra"]))
    names = sorted(message)
    if mutation == "drop":
        message.pop(draw(st.sampled_from(names)))
    elif mutation == "retype":
        message[draw(st.sampled_from(names))] = draw(_values)
    elif mutation == "extra":
        message[draw(_field_names)] = draw(_values)
    return message


def _padded_ping(size: int) -> str:
    """A ping of ``size`` characters (its padding an unknown field) around the limit."""
    head, tail = '{"type": "ping", "id": "pad", "pad": "', '"}'
    return head + "x" * max(0, size - len(head) - len(tail)) + tail


_frames: st.SearchStrategy[str | bytes] = st.one_of(
    _near_valid().map(_json),
    _near_valid().map(_json),
    _objects.map(_json),
    _json_values.map(_json),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(MAX_FRAME_BYTES - 64, MAX_FRAME_BYTES + 4096).map(_padded_ping),
)


@dataclass
class Fuzzer:
    """Sends one frame at a time over one socket and checks what comes back."""

    world: World
    ws: AsyncWebSocketSession
    user_accounts: set[str]
    foreign_account: str
    answered: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    rewritten: int = 0
    largest: int = 0

    def _defused(self, frame: str | bytes) -> tuple[str | bytes, Incoming | ProtocolError | None]:
        """The frame to send and what the protocol's parser makes of it.

        A valid ``generate_suggestion`` for the user's own account would start a real
        generation (seconds each); it is pointed at another user's account instead, so
        the command path still runs and ends in NOT_FOUND.
        """
        if isinstance(frame, bytes):
            return frame, None
        try:
            parsed: Incoming | ProtocolError = parse_client_message(frame)
        except ProtocolError as exc:
            return frame, exc
        if isinstance(parsed, GenerateSuggestionMessage) and (
            parsed.account is None or parsed.account in self.user_accounts
        ):
            raw = orjson.loads(frame)
            raw["account"] = self.foreign_account
            frame = _json(raw)
            parsed = parse_client_message(frame)
            self.rewritten += 1
        return frame, parsed

    async def exchange(self, generated: str | bytes) -> None:
        frame, parsed = self._defused(generated)
        self.sent += 1
        self.largest = max(self.largest, len(frame))
        marker = f"fuzz-{self.sent}"
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_text(frame)
        await self.ws.send_json({"type": "ping", "id": marker})
        command = isinstance(parsed, GenerateSuggestionMessage | ExecuteOrder)
        answers: list[dict[str, Any]] = []
        pushed: list[dict[str, Any]] = []
        marker_seen = False
        deadline = time.monotonic() + 20
        # Until the marker's pong (the socket still reads) and, for a command, its
        # outcome (it arrives from the owning service, possibly after the pong).
        while not marker_seen or (command and not answers and not pushed):
            message = await receive(self.ws, max(0.1, deadline - time.monotonic()))
            _shape(message)
            if message["type"] == "pong" and message.get("request_id") == marker:
                marker_seen = True
            elif message["type"] in ANSWERS:
                answers.append(message)
            elif command and message["type"] == "suggestion_update":
                pushed.append(message)
        assert len(answers) + (1 if pushed and not answers else 0) == 1, (frame, answers)
        answer = answers[0] if answers else pushed[0]
        what = answer["type"] if answer["type"] != "error" else f"error {answer['kind']}"
        self.answered[what] += 1
        if parsed is None:  # a binary frame
            assert (answer["type"], answer["kind"]) == ("error", "VALIDATION_ERROR"), answer
            return
        expected_id = parsed.request_id if isinstance(parsed, ProtocolError) else parsed.id
        assert answer.get("request_id") == expected_id, (frame[:300], answer)
        if isinstance(parsed, ProtocolError):
            assert answer["type"] == "error", (frame[:300], answer)
            assert answer["kind"] == "VALIDATION_ERROR", answer
            assert answer["field"] == parsed.field, (frame[:300], answer)
        elif isinstance(parsed, Ping):
            assert answer["type"] == "pong", answer
        elif isinstance(parsed, SubscribeQuotes | UnsubscribeQuotes):
            ok = answer["type"] == "subscribed" or answer.get("field") == "symbols"
            assert ok, (frame[:300], answer)
        else:
            ok = answer["type"] == "suggestion_update" or answer["kind"] in (
                "NOT_FOUND",
                "RATE_LIMITED",
            )
            assert ok, (frame[:300], answer)


async def close_of(ws: AsyncWebSocketSession) -> WebSocketDisconnect:
    """The close that ends ``ws`` (skipping whatever was queued before it)."""
    for _ in range(1000):
        try:
            await ws.receive_text(timeout=10)
        except WebSocketDisconnect as closed:
            return closed
    raise AssertionError("the socket was not closed")


async def test_fuzzed_websocket_messages_are_answered_and_the_socket_stays(
    world: World, fault: FaultEntry, logs: LogWatch
) -> None:
    fault.fault = (
        f"{EXAMPLES} hypothesis-generated WebSocket frames (malformed protocol messages, "
        "any JSON, non-JSON text, binary, deep nesting, around/over the 16 KiB limit) "
        "on one socket, then a frame over 1 MiB"
    )
    loop = asyncio.get_running_loop()
    bob = {world.accounts["bob"]}
    async with socket(world, "bob") as ws:
        fuzzer = Fuzzer(world, ws, bob, world.accounts["alice"])

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            # No shrinking: the socket carries state from one frame to the next, so a
            # shrunk example would not replay the failure; the failing frame is reported.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=_frames)
        @example(frame=b'{"type": "ping"}')
        @example(frame='{"type": "ping", "id": "' + "i" * 65 + '"}')
        @example(frame='{"type": "generate_suggestion", "symbol": "qqq", "id": "g"}')
        @example(frame=f'{{"type": "execute_order", "suggestion_id": "{NOT_A_SUGGESTION}"}}')
        @example(frame='{"type": "execute_order", "suggestion_id": "1", "custom_credit": -1}')
        @example(frame=_padded_ping(MAX_FRAME_BYTES + 1))
        def fuzz(frame: str | bytes) -> None:
            # Hypothesis runs in a worker thread; the socket lives on the test's loop.
            asyncio.run_coroutine_threadsafe(fuzzer.exchange(frame), loop).result(timeout=60)

        await asyncio.to_thread(fuzz)
        assert fuzzer.sent >= EXAMPLES
        fault.check(
            "every frame got exactly one answer: an error (known kind, not INTERNAL_ERROR, "
            "with a message) or the protocol's answer, as the pure parser predicts"
        )
        fault.check("errors echo the frame's id as request_id when it had a usable one")
        fault.check("a ping after each frame got its pong: the socket stayed open")

        # The one frame the protocol closes on: over uvicorn's ws_max_size.
        await ws.send_text("x" * (WS_MAX_SIZE + 1))
        closed = await close_of(ws)
    assert closed.code == CLOSE_MESSAGE_TOO_BIG, (closed.code, closed.reason)
    async with socket(world, "bob") as ws:
        await ws.send_json({"type": "ping", "id": "after"})
        assert await receive(ws) == {"type": "pong", "request_id": "after"}
    fault.check("a frame over 1 MiB is closed with 1009 (message too big); a new socket works")

    problems = logs.problems()
    assert not problems, problems
    fault.check("no unhandled exception or 5xx logged by the gateway (or any service)")
    fault.details = {
        "frames": fuzzer.sent,
        "answers": dict(sorted(fuzzer.answered.items())),
        "generates_pointed_at_a_foreign_account": fuzzer.rewritten,
        "largest_frame_chars": fuzzer.largest,
        "close_code_over_1_mib": closed.code,
    }


# --- refused REST requests change nothing ----------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A request the gateway must refuse, and how."""

    name: str
    user: str | None
    method: str
    path: str
    body: Any = None
    status: int = 422
    kind: str = "VALIDATION_ERROR"
    csrf: str = "valid"
    """``valid``, ``missing`` or ``wrong``."""
    content: bytes | None = None


SETTINGS = "/trading/api/settings/"
LINK = "/trading/api/broker-link/"
EXECUTE = "/trading/api/senex_trident/suggestions/{sid}/execute/"
REJECT = "/trading/api/senex_trident/suggestions/{sid}/reject/"
#: A settings snapshot that differs from every account's current one (the default).
CHANGED = {"risk_template": "AGGRESSIVE", "automation_enabled": True}

CASES = [
    Refused("settings: unknown risk template", "alice", "PUT", SETTINGS, {"risk_template": "YOLO"}),
    Refused(
        "settings: no underlyings enabled", "alice", "PUT", SETTINGS, {**CHANGED, "underlyings": []}
    ),
    Refused(
        "settings: NUL in the e-mail",
        "alice",
        "PUT",
        SETTINGS,
        {**CHANGED, "email": "al\x00ice@example.com"},
    ),
    Refused(
        "settings: offset of the wrong type",
        "alice",
        "PUT",
        SETTINGS,
        {**CHANGED, "automation_offset_cents": "lots"},
    ),
    Refused(
        "settings: offset over 1000 cents",
        "alice",
        "PUT",
        SETTINGS,
        {**CHANGED, "automation_offset_cents": 100_000},
    ),
    Refused(
        "settings: body not JSON",
        "alice",
        "PUT",
        SETTINGS,
        content=b'{"risk_template": "AGGRESSIVE",',
        status=400,
    ),
    Refused(
        "settings: no CSRF token", "alice", "PUT", SETTINGS, CHANGED, 403, "AUTH_FAILED", "missing"
    ),
    Refused(
        "settings: wrong CSRF token", "alice", "PUT", SETTINGS, CHANGED, 403, "AUTH_FAILED", "wrong"
    ),
    Refused("settings: no session", None, "PUT", SETTINGS, CHANGED, 401, "AUTH_FAILED"),
    Refused(
        "settings: another user's account",
        "bob",
        "PUT",
        SETTINGS + "?account={alice_account}",
        CHANGED,
        404,
        "NOT_FOUND",
    ),
    Refused("execute: negative custom credit", "alice", "POST", EXECUTE, {"custom_credit": "-1"}),
    Refused("execute: custom credit NaN", "alice", "POST", EXECUTE, {"custom_credit": "NaN"}),
    Refused("execute: custom credit text", "alice", "POST", EXECUTE, {"custom_credit": "lots"}),
    Refused(
        "execute: custom credit rounding to 0.00",
        "alice",
        "POST",
        EXECUTE,
        {"custom_credit": "0.001"},
        kind="NO_CREDIT",
    ),
    Refused(
        "execute: misspelt confirm_warnings", "alice", "POST", EXECUTE, {"confirm_warnings": True}
    ),
    Refused("execute: no CSRF token", "alice", "POST", EXECUTE, {}, 403, "AUTH_FAILED", "missing"),
    Refused("execute: another user's suggestion", "bob", "POST", EXECUTE, {}, 404, "NOT_FOUND"),
    Refused(
        "execute: a warning not confirmed",
        "carol",
        "POST",
        "/trading/api/senex_trident/suggestions/{carol_sid}/execute/",
        {},
        409,
        "RISK_WARNING_UNCONFIRMED",
    ),
    Refused("reject: another user's suggestion", "bob", "POST", REJECT, {}, 404, "NOT_FOUND"),
    Refused("reject: reason over 500 characters", "alice", "POST", REJECT, {"reason": "n" * 501}),
    Refused("reject: NUL in the reason", "alice", "POST", REJECT, {"reason": "no\x00"}),
    Refused("reject: no CSRF token", "alice", "POST", REJECT, {}, 403, "AUTH_FAILED", "missing"),
    Refused(
        "broker link: empty secrets",
        "alice",
        "PUT",
        LINK,
        {"mode": "PAPER", "client_secret": "", "refresh_token": ""},
    ),
    Refused(
        "broker link: only one secret",
        "alice",
        "PUT",
        LINK,
        {"mode": "PAPER", "client_secret": "s"},
    ),
    Refused("broker link: the other mode", "alice", "PUT", LINK, {"mode": "LIVE"}),
    Refused(
        "broker link: secrets the broker refuses",
        "alice",
        "PUT",
        LINK,
        {"mode": "PAPER", "client_secret": "nope", "refresh_token": "nope"},
        kind="AUTH_FAILED",
    ),
    Refused(
        "broker link: no CSRF token (a new paper customer otherwise)",
        "alice",
        "PUT",
        LINK,
        {"mode": "PAPER"},
        403,
        "AUTH_FAILED",
        "missing",
    ),
    Refused(
        "login: wrong password",
        None,
        "POST",
        "/api/auth/login",
        {"username": "alice", "password": "wrong"},
        401,
        "AUTH_FAILED",
    ),
]
#: The stored state a refused request must not touch, with the order to read it in.
TABLES = {
    "gateway_users": "user_id",
    "gateway_sessions": "token_hash",
    "gateway_account_settings": "account_number",
    "broker_credentials": "account_number",
}


async def _generate(client: httpx2.AsyncClient) -> str:
    """A new suggestion's id, once its risk check is known."""
    response = await client.post(GENERATE, json={"symbol": "QQQ"})
    assert response.status_code == 200, response.text
    suggestion_id: str = response.json()["suggestion"]["suggestion"]["suggestion_id"]
    for _ in range(200):
        view = (await client.get(f"/trading/api/suggestions/{suggestion_id}/")).json()
        if view["suggestion"]["risk_check_passed"] is not None:
            return suggestion_id
        await asyncio.sleep(0.05)
    raise AssertionError("the risk check did not arrive")


@dataclass
class State:
    world: World
    owners: dict[str, httpx2.AsyncClient]
    """Each suggestion id's owner's client (to read its view)."""

    async def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with await psycopg.AsyncConnection.connect(self.world.dsn) as conn:
            for table, order in TABLES.items():
                cur = await conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
                out[table] = await cur.fetchall()
            cur = await conn.execute("SELECT coalesce(max(position), 0), count(*) FROM events")
            out["audit_head"] = await cur.fetchone()
        info = await self.world.bus.js.stream_info(BUSINESS_STREAM.name)
        out["stream_last_seq"] = info.state.last_seq
        out["events_seen"] = len(self.world.events.events)
        for sid, client in self.owners.items():
            response = await client.get(f"/trading/api/suggestions/{sid}/")
            assert response.status_code == 200, response.text
            out[f"suggestion {sid}"] = response.json()
        return out

    async def quiet(self, timeout: float = 20.0) -> dict[str, Any]:
        """The state once audit has recorded the whole stream and nothing moves for 1 s."""
        deadline = time.monotonic() + timeout
        before = await self.snapshot()
        while True:
            await asyncio.sleep(1.0)
            now = await self.snapshot()
            if now == before and now["audit_head"][0] == now["stream_last_seq"]:
                return now
            assert time.monotonic() < deadline, "the system did not settle"
            before = now


async def _send(client: httpx2.AsyncClient, case: Refused, path: str) -> httpx2.Response:
    if case.content is not None:
        request = client.build_request(
            case.method, path, content=case.content, headers={"Content-Type": "application/json"}
        )
    else:
        request = client.build_request(case.method, path, json=case.body)
    if case.csrf == "missing":
        request.headers.pop(CSRF_HEADER, None)
    elif case.csrf == "wrong":
        request.headers[CSRF_HEADER] = "not-the-session-token"
    return await client.send(request)


async def test_a_refused_request_changes_nothing_stored(
    world: World, fault: FaultEntry, logs: LogWatch
) -> None:
    fault.fault = f"{len(CASES)} REST requests the gateway must refuse"
    async with (
        world.user("alice") as alice,
        world.user("bob") as bob,
        world.user("carol") as carol,
        world.client() as anonymous,
    ):
        sid = await _generate(alice)
        carol_sid = await _generate(carol)
        clients: dict[str | None, httpx2.AsyncClient] = {
            "alice": alice,
            "bob": bob,
            "carol": carol,
            None: anonymous,
        }
        state = State(world, {sid: alice, carol_sid: carol})
        baseline = await state.quiet()
        for key in (sid, carol_sid):
            assert baseline[f"suggestion {key}"]["suggestion"]["status"] == "PENDING"
        assert baseline["gateway_account_settings"], "no settings stored to protect"

        outcomes: dict[str, str] = {}
        for case in CASES:
            path = case.path.format(
                sid=sid, carol_sid=carol_sid, alice_account=world.accounts["alice"]
            )
            before = await state.snapshot()
            response = await _send(clients[case.user], case, path)
            after = await state.snapshot()
            assert response.status_code == case.status, (case.name, response.text)
            assert error_of(response)["kind"] == case.kind, (case.name, response.text)
            changed = sorted(k for k in before if before[k] != after[k])
            assert not changed, (case.name, changed, {k: (before[k], after[k]) for k in changed})
            outcomes[case.name] = f"{response.status_code} {case.kind}"
        fault.check("each refusal answered with its documented status and error kind (no 5xx)")
        fault.check(
            "around each refusal: gateway_users, gateway_sessions, gateway_account_settings "
            "and broker_credentials rows, the audit head, the business stream's last "
            "sequence, the events seen on senex.evt.> and both suggestions' views unchanged"
        )
        await asyncio.sleep(1.0)  # anything a refusal set off asynchronously
        assert await state.snapshot() == baseline
        fault.check("1 s after the last refusal the whole state still equals the baseline")

    problems = logs.problems()
    assert not problems, problems
    fault.check("no unhandled exception or 5xx logged by the gateway (or any service)")
    fault.details = {
        "refusals": outcomes,
        "stream_last_seq": baseline["stream_last_seq"],
        "suggestions": [str(UUID(sid)), str(UUID(carol_sid))],
    }


async def test_a_custom_credit_beyond_decimal_precision_is_refused(
    world: World, logs: LogWatch
) -> None:
    async with world.user("alice") as alice:
        sid = await _generate(alice)
        state = State(world, {sid: alice})
        before = await state.quiet()
        response = await alice.post(EXECUTE.format(sid=sid), json={"custom_credit": "1e30"})
        assert await state.snapshot() == before
    assert response.status_code == 422, response.text
    assert error_of(response)["kind"] == "VALIDATION_ERROR"
    assert not logs.problems()
