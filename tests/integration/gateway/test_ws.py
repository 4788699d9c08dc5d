"""The WebSocket ``/ws`` against the running gateway, with the real services behind it.

One world for the module (see `world.py`). Quotes are published by the test itself on
``senex.md.<symbol>.QuoteReceived`` for symbols market data does not stream, so their
timing is the test's; account events are published on the users' account subjects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
from httpx2.websockets import AsyncWebSocketSession, WebSocketDisconnect

from libs.contracts.envelope import Event
from libs.contracts.market import QuoteReceived
from libs.contracts.system import (
    NotificationChannel,
    NotificationRequested,
    NotificationTopic,
    Severity,
)
from libs.runtime.bus import Bus
from libs.runtime.servers import ServerProcess
from services.gateway.ws.hub import Hub
from services.gateway.ws.protocol import Outgoing, QuoteTexts
from tests.integration.gateway.world import World, running_world

#: Symbols nothing else in the world publishes quotes for.
QUIET = "TSTA"
QUIET_OPTION = "TSTB  270115P00100000"


@pytest.fixture(scope="module")
async def world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    async with running_world(server_root, database_url) as w:
        yield w


@asynccontextmanager
async def socket(
    world: World, user: str | None, headers: dict[str, str] | None = None
) -> AsyncIterator[AsyncWebSocketSession]:
    async with world.client() as client:
        if user is not None:
            await world.login(client, user)
        async with client.websocket(
            f"{world.url}/ws", headers=headers, keepalive_ping_interval_seconds=None
        ) as ws:
            yield ws


async def receive(ws: AsyncWebSocketSession, timeout: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await ws.receive_text(timeout=timeout))
    return message


async def until(ws: AsyncWebSocketSession, kind: str, timeout: float = 15.0) -> dict[str, Any]:
    """The next message of type ``kind`` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await receive(ws, max(0.01, deadline - time.monotonic()))
        if message["type"] == kind:
            return message


async def drain(ws: AsyncWebSocketSession) -> list[dict[str, Any]]:
    """Every message up to the answer of a ping sent now (the connection is in order)."""
    marker = uuid4().hex
    await ws.send_json({"type": "ping", "id": marker})
    seen: list[dict[str, Any]] = []
    while True:
        message = await receive(ws)
        if message["type"] == "pong" and message.get("request_id") == marker:
            return seen
        seen.append(message)


async def close_of(ws: AsyncWebSocketSession) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as caught:
        await ws.receive_text(timeout=10)
    return caught.value


def quote(symbol: str, bid: str) -> QuoteReceived:
    now = datetime.now(UTC)
    return QuoteReceived(
        occurred_at=now,
        producer="market_data",
        correlation_id=uuid4(),
        symbol=symbol,
        bid=Decimal(bid),
        ask=Decimal(bid) + Decimal("0.10"),
        quoted_at=now,
    )


async def publish_quote(world: World, symbol: str, bid: str) -> QuoteReceived:
    event = quote(symbol, bid)
    await world.bus.publish(event)
    return event


async def notify(world: World, account: str, title: str) -> None:
    await world.bus.publish(
        NotificationRequested(
            occurred_at=datetime.now(UTC),
            producer="position_monitor",
            correlation_id=uuid4(),
            account_id=account,
            notification_id=uuid4(),
            topic=NotificationTopic.ORDER_FILLED,
            channels=(NotificationChannel.BANNER,),
            severity=Severity.INFO,
            title=title,
            message=f"{title} for {account}",
        )
    )


# --- the handshake -----------------------------------------------------------------------


async def test_without_a_session_the_socket_is_closed_with_a_reason(world: World) -> None:
    async with socket(world, None) as ws:
        closed = await close_of(ws)
    assert closed.code == 4401
    assert "log in" in (closed.reason or "")

    async with world.client() as client:
        client.cookies.set("senex_session", "not-a-session")
        async with client.websocket(f"{world.url}/ws") as ws:
            closed = await close_of(ws)
    assert closed.code == 4401


async def test_a_foreign_origin_is_refused_and_the_own_origin_accepted(world: World) -> None:
    async with socket(world, "alice", {"Origin": "https://evil.example"}) as ws:
        closed = await close_of(ws)
    assert closed.code == 4403
    assert closed.reason == "origin not allowed"

    async with socket(world, "alice", {"Origin": world.url}) as ws:
        await ws.send_json({"type": "ping", "id": "p1"})
        assert await receive(ws) == {"type": "pong", "request_id": "p1"}


# --- quotes --------------------------------------------------------------------------------


async def test_quotes_are_throttled_to_one_per_second_latest_wins(world: World) -> None:
    async with socket(world, "alice") as ws:
        await ws.send_json({"type": "subscribe_quotes", "symbols": [QUIET.lower()], "id": "s"})
        assert await receive(ws) == {"type": "subscribed", "symbols": [QUIET], "request_id": "s"}

        # The first quote of a window goes at once (not held). The timing itself is
        # the pure throttle's, tested with an injected clock; here the semantics.
        await publish_quote(world, QUIET, "10.00")
        first = await until(ws, "quote_update")
        assert (first["symbol"], first["bid"], first["held"]) == (QUIET, "10.00", False)
        # The rest of the window: only the latest, held to the window's end.
        for bid in ("10.01", "10.02", "10.03"):
            await publish_quote(world, QUIET, bid)
        second = await until(ws, "quote_update")
        assert (second["bid"], second["held"]) == ("10.03", True)
        # That send opened a new window; once it ends empty, the next quote goes at once.
        await asyncio.sleep(2.2)
        assert [m for m in await drain(ws) if m["type"] == "quote_update"] == []
        await publish_quote(world, QUIET, "10.04")
        third = await until(ws, "quote_update")
        assert (third["bid"], third["held"]) == ("10.04", False)

        # Unsubscribed: nothing more arrives for the symbol.
        await ws.send_json({"type": "unsubscribe_quotes", "symbols": [QUIET]})
        assert await until(ws, "subscribed") == {"type": "subscribed", "symbols": []}
        await publish_quote(world, QUIET, "10.05")
        await asyncio.sleep(0.3)
        assert [m for m in await drain(ws) if m["type"] == "quote_update"] == []


class QuoteSink:
    """A connection as the hub sees it, keeping the quotes it is offered."""

    def __init__(self) -> None:
        self.quotes: asyncio.Queue[tuple[str, QuoteTexts]] = asyncio.Queue()

    def on_quote(self, symbol: str, texts: QuoteTexts) -> None:
        self.quotes.put_nowait((symbol, texts))

    def on_account_event(self, event: Event, out: Outgoing, text: str) -> None:
        pass

    def shutdown(self) -> None:
        pass


async def _no_lease(symbols: list[str], lease_s: int) -> None:
    pass


async def test_a_symbol_is_subscribed_at_the_server_when_the_hub_says_so(
    nats_server: ServerProcess,
) -> None:
    """Regression: a quote published right after ``subscribed`` never reached the client.

    nats-py queues SUB for its flusher task but writes ``flush()``'s PING straight to the
    socket, so the PONG the hub waited for could come back before the server had the
    subscription. Here the flusher is held up (as by a busy event loop) while the hub
    subscribes, which made that deterministic: the quote was gone.
    """
    bus = await Bus.connect(nats_server.url, "gateway-hub-test")
    publisher = await Bus.connect(nats_server.url, "quote-publisher")
    hub = Hub(lambda: bus, lease_s=60, lease=_no_lease)
    sink = QuoteSink()
    try:
        transport: Any = bus.nc._transport
        drain = transport.drain
        held = asyncio.Event()

        async def slow_drain() -> None:
            if not held.is_set():
                held.set()
                await asyncio.sleep(0.5)
            await drain()

        transport.drain = slow_drain
        await bus.nc.publish("senex.test.hold", b"")  # the flusher writes it, then waits
        await held.wait()

        await hub.add_symbols(sink, ["TSTC"])
        await publisher.publish(quote("TSTC", "30.00"))  # stored: the server routed it
        symbol, texts = await asyncio.wait_for(sink.quotes.get(), timeout=5)
        assert symbol == "TSTC"
        assert orjson.loads(texts.at_once)["bid"] == "30.00"
    finally:
        await hub.close()
        await publisher.close()
        await bus.close()


async def test_each_symbol_has_its_own_window(world: World) -> None:
    async with socket(world, "bob") as ws:
        await ws.send_json({"type": "subscribe_quotes", "symbols": [QUIET, QUIET_OPTION]})
        assert (await until(ws, "subscribed"))["symbols"] == sorted([QUIET, QUIET_OPTION])
        await publish_quote(world, QUIET, "20.00")
        await publish_quote(world, QUIET_OPTION, "1.25")
        got = {(await until(ws, "quote_update"))["symbol"] for _ in range(2)}
        assert got == {QUIET, QUIET_OPTION}


# --- commands ------------------------------------------------------------------------------


async def test_generate_over_the_socket_pushes_the_suggestion(world: World) -> None:
    async with socket(world, "alice") as ws:
        await ws.send_json({"type": "generate_suggestion", "symbol": "QQQ", "id": "gen-1"})
        update = await until(ws, "suggestion_update", 30)
        assert update["event"] == "SuggestionGenerated"
        assert update["request_id"] == "gen-1"
        assert update["status"] == "PENDING"
        assert update["account_id"] == world.accounts["alice"]
        suggestion = update["suggestion"]
        assert suggestion["underlying"] == "QQQ"
        assert update["suggestion_id"] == suggestion["suggestion_id"]
        # Its risk check follows, for the same suggestion and the same request.
        checked = await until(ws, "suggestion_update", 30)
        assert checked["event"] in ("RiskCheckPassed", "RiskCheckFailed")
        assert checked["suggestion_id"] == suggestion["suggestion_id"]
        assert checked["request_id"] == "gen-1"

        # Executing someone else's (or no) suggestion: NOT_FOUND, and the socket lives on.
        await ws.send_json({"type": "execute_order", "suggestion_id": str(uuid4()), "id": "x"})
        error = await until(ws, "error", 15)
        assert (error["kind"], error["request_id"]) == ("NOT_FOUND", "x")

        await ws.send_json(
            {"type": "execute_order", "suggestion_id": suggestion["suggestion_id"], "id": "ex"}
        )
        approved = await until(ws, "suggestion_update", 15)
        assert (approved["event"], approved["status"]) == ("SuggestionApproved", "APPROVED")
        assert approved["request_id"] == "ex"


@pytest.mark.parametrize(
    ("frame", "kind", "field"),
    [
        ("not json", "VALIDATION_ERROR", None),
        ("[1, 2]", "VALIDATION_ERROR", None),
        ('{"type": "dance"}', "VALIDATION_ERROR", "type"),
        ('{"type": "subscribe_quotes", "symbols": ["not a symbol!"]}', "VALIDATION_ERROR", None),
        ('{"type": "subscribe_quotes", "symbols": []}', "VALIDATION_ERROR", "symbols"),
        ('{"type": "subscribe_quotes"}', "VALIDATION_ERROR", "symbols"),
        ('{"type": "generate_suggestion", "symbol": "IWM"}', "VALIDATION_ERROR", "symbol"),
        ('{"type": "execute_order", "suggestion_id": "nope"}', "VALIDATION_ERROR", None),
        ('{"type": "ping", "extra": 1}', "VALIDATION_ERROR", "extra"),
    ],
)
async def test_an_invalid_message_gets_an_error_and_the_socket_stays(
    world: World, frame: str, kind: str, field: str | None
) -> None:
    async with socket(world, "bob") as ws:
        await ws.send_text(frame)
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["kind"] == kind
        assert error["message"]
        if field is not None:
            assert error["field"] == field
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


async def test_binary_frames_and_too_many_symbols_are_refused_with_errors(world: World) -> None:
    async with socket(world, "bob") as ws:
        await ws.send_bytes(b'{"type": "ping"}')
        assert (await receive(ws))["type"] == "error"
        symbols = [f"S{i:03d}" for i in range(100)]
        await ws.send_json({"type": "subscribe_quotes", "symbols": symbols})
        assert len((await until(ws, "subscribed"))["symbols"]) == 100
        await ws.send_json({"type": "subscribe_quotes", "symbols": ["ONEMOR"], "id": "m"})
        error = await receive(ws)
        assert (error["type"], error["field"], error["request_id"]) == ("error", "symbols", "m")
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


# --- isolation -----------------------------------------------------------------------------


async def test_two_users_each_see_only_their_own_accounts_events(world: World) -> None:
    alice, bob = world.accounts["alice"], world.accounts["bob"]
    async with socket(world, "alice") as alice_ws, socket(world, "bob") as bob_ws:
        # Both connected (each answered a ping) before anything is published.
        await drain(alice_ws)
        await drain(bob_ws)
        for i in range(3):
            await notify(world, alice, f"alice-{i}")
            await notify(world, bob, f"bob-{i}")
        await notify(world, world.accounts["carol"], "carol-0")

        async def notifications(ws: AsyncWebSocketSession, wanted: int) -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            while len(got) < wanted:
                got.append(await until(ws, "notification"))
            # Whatever else was sent by now: nothing of another account.
            rest = await drain(ws)
            return got + [m for m in rest if m["type"] == "notification"]

        seen_by_alice = await notifications(alice_ws, 3)
        seen_by_bob = await notifications(bob_ws, 3)
    assert [m["title"] for m in seen_by_alice] == ["alice-0", "alice-1", "alice-2"]
    assert {m["account_id"] for m in seen_by_alice} == {alice}
    assert [m["title"] for m in seen_by_bob] == ["bob-0", "bob-1", "bob-2"]
    assert {m["account_id"] for m in seen_by_bob} == {bob}


async def test_logout_ends_an_open_socket(world: World) -> None:
    async with world.client() as client:
        await world.login(client, "bob")
        cookie = client.cookies.get("senex_session")
        async with client.websocket(f"{world.url}/ws") as ws:
            await ws.send_json({"type": "ping"})
            assert await receive(ws) == {"type": "pong"}
            assert (await client.post("/api/auth/logout")).status_code == 200
            # The connection re-checks its session every ws_recheck_s (1 s in the world).
            closed = await close_of(ws)
        assert closed.code == 4401
        # The old cookie opens nothing any more.
        client.cookies.set("senex_session", cookie or "gone")
        async with client.websocket(f"{world.url}/ws") as ws:
            assert (await close_of(ws)).code == 4401
