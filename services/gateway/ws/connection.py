"""One WebSocket client: its subscriptions, throttles, send queue and commands.

Three tasks per connection: the reader (this coroutine: parse, answer, dispatch), the
writer (drains the `Outbox` into the socket) and the re-check (session still alive,
accounts still the same). The hub calls `on_quote` / `on_account_event` synchronously:
they only touch the throttles and the outbox, so a client that reads slowly holds up
nobody but itself. Quotes, position valuations and balances are latest-wins slots in the
outbox (bounded by what is subscribed); everything else is ordered and bounded, and a
client that lets it overflow is disconnected with `CLOSE_TOO_SLOW`.

Throttle windows run on the event loop's monotonic clock (transport timers use real
time, DOMAIN.md 8), one `call_at` per open window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import Any, Literal
from uuid import UUID

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from libs.contracts.envelope import Event
from libs.contracts.errors import ErrorKind, SenexError
from libs.runtime.log import get_logger
from libs.runtime.tasks import cancel_and_wait
from services.gateway import actions
from services.gateway.context import Gateway, Principal
from services.gateway.ws.hub import Hub
from services.gateway.ws.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_TOO_SLOW,
    ExecuteOrder,
    GenerateSuggestionMessage,
    Incoming,
    Outgoing,
    Ping,
    ProtocolError,
    QuoteTexts,
    SubscribeQuotes,
    UnsubscribeQuotes,
    dumps,
    error_message,
    error_of,
    parse_client_message,
)
from services.gateway.ws.throttle import Offer, Outbox, Throttle

#: Commands whose events a connection still tags with the request id (oldest forgotten).
REMEMBERED_REQUESTS = 256

ThrottleName = Literal["quote", "position", "balance"]


class Connection:
    """A logged-in client on ``/ws``."""

    def __init__(
        self,
        websocket: WebSocket,
        gateway: Gateway,
        hub: Hub,
        principal: Principal,
        session_token: str,
        accounts: list[str],
    ) -> None:
        s = gateway.settings
        self._ws = websocket
        self._gateway = gateway
        self._hub = hub
        self._principal = principal
        self._session_token = session_token
        self.accounts: set[str] = set(accounts)
        self.symbols: set[str] = set()
        self._loop = asyncio.get_running_loop()
        self._throttles: dict[ThrottleName, Throttle[str, str]] = {
            "quote": Throttle(s.quote_interval_s),
            "position": Throttle(s.position_interval_s),
            "balance": Throttle(s.balance_interval_s),
        }
        self._timers: dict[tuple[ThrottleName, str], asyncio.TimerHandle] = {}
        self._outbox: Outbox[tuple[ThrottleName, str]] = Outbox(s.ws_queue_limit)
        self._wake = asyncio.Event()
        self._requests: OrderedDict[UUID, str] = OrderedDict()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closing: tuple[int, str] | None = None
        self._closed = asyncio.Event()
        self._log = get_logger("gateway.ws", user=principal.user_id)

    # --- called by the hub (never blocks) --------------------------------------------

    def on_quote(self, symbol: str, texts: QuoteTexts) -> None:
        if symbol not in self.symbols or self._closing is not None:
            return
        # The first quote of a window goes at once; the rest wait as the window's latest.
        if self._throttles["quote"].offer(symbol, texts.held, self._loop.time()) is Offer.SEND:
            self._latest(("quote", symbol), texts.at_once)
            self._arm("quote", symbol)

    def on_account_event(self, event: Event, out: Outgoing, text: str) -> None:
        if event.account_id not in self.accounts or self._closing is not None:
            return  # the hub routes by account; this is the second, independent check
        request_id = self._request_of(event)
        if request_id is not None:
            text = dumps({**out.message, "request_id": request_id})
        if out.throttle is None or out.key is None:
            self._ordered(text)
            return
        if self._throttles[out.throttle].offer(out.key, text, self._loop.time()) is Offer.SEND:
            self._latest((out.throttle, out.key), text)
            self._arm(out.throttle, out.key)

    def _request_of(self, event: Event) -> str | None:
        """The client request behind ``event``: the one whose command caused it directly,
        else the one that started its flow (a generate, for the suggestion's later events)."""
        if not self._requests:
            return None
        direct = self._requests.get(event.causation_id) if event.causation_id else None
        return direct or self._requests.get(event.correlation_id)

    def shutdown(self) -> None:
        self._close(CLOSE_GOING_AWAY, "the gateway is shutting down")

    # --- the send queue --------------------------------------------------------------

    def _ordered(self, text: str) -> None:
        if self._closing is not None:
            return
        if not self._outbox.put(text):
            self._close(
                CLOSE_TOO_SLOW,
                f"too slow: more than {self._outbox.limit} messages waiting to be read",
            )
            return
        self._wake.set()

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message for the client."""
        self._ordered(dumps(message))

    def _latest(self, key: tuple[ThrottleName, str], text: str) -> None:
        self._outbox.put_latest(key, text)
        self._wake.set()

    def _arm(self, name: ThrottleName, key: str) -> None:
        deadline = self._throttles[name].deadline(key)
        if deadline is not None:
            self._timers[(name, key)] = self._loop.call_at(deadline, self._window_end, name, key)

    def _window_end(self, name: ThrottleName, key: str) -> None:
        self._timers.pop((name, key), None)
        if self._closing is not None:
            return
        held = self._throttles[name].close(key, self._loop.time())
        if held is not None:
            self._latest((name, key), held[0])
            self._arm(name, key)

    def _forget(self, name: ThrottleName, key: str) -> None:
        timer = self._timers.pop((name, key), None)
        if timer is not None:
            timer.cancel()
        self._throttles[name].discard(key)
        self._outbox.drop_latest((name, key))

    def _close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = (code, reason)
            self._wake.set()

    # --- the tasks -------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the client until it leaves or is closed; then let go of everything."""
        self._hub.attach(self)
        writer = asyncio.create_task(self._write(), name="ws-writer")
        recheck = asyncio.create_task(self._recheck(), name="ws-recheck")
        reader = asyncio.create_task(self._read(), name="ws-reader")
        try:
            await self._hub.add_accounts(self, self.accounts)
            # Whichever ends first ends the connection: the client left (reader), or
            # the gateway closed it (writer, after sending the close frame).
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait([reader, recheck, *self._in_flight], log=self._log)
            if not writer.done():
                self._close(CLOSE_GOING_AWAY, "connection ended")
                # The writer sends the close frame; a client that reads nothing gets a
                # bounded wait, then uvicorn drops the socket.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(writer), timeout=5.0)
            await cancel_and_wait([writer], log=self._log)
            await self._release()

    async def _release(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._hub.detach(self)
        try:
            await self._hub.remove_symbols(self, self.symbols)
            await self._hub.remove_accounts(self, self.accounts)
        except Exception as exc:  # the bus is gone (shutdown): nothing is left to release
            self._log.warning("subscriptions not released", error=repr(exc))

    async def _write(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):  # the client went away: the end
            await self._write_until_closed()

    async def _write_until_closed(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for text in self._outbox.take():
                if self._closing is not None:
                    break
                await self._ws.send_text(text)
            if self._closing is not None:
                code, reason = self._closing
                if self._ws.application_state is WebSocketState.CONNECTED:
                    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                        await self._ws.close(code, reason)
                if code == CLOSE_TOO_SLOW:
                    self._log.warning("slow client disconnected", reason=reason)
                return

    async def _read(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):  # the client went away: the end
            await self._read_until_disconnected()

    async def _read_until_disconnected(self) -> None:
        while True:
            frame = await self._ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            text = frame.get("text")
            if text is None:
                self.send(error_message(ErrorKind.VALIDATION_ERROR, "send JSON text frames"))
                continue
            try:
                message = parse_client_message(text)
            except ProtocolError as exc:
                self.send(error_of(exc, exc.request_id))
                continue
            await self._dispatch(message)

    async def _recheck(self) -> None:
        """End the connection with its session (logout, expiry); follow account links."""
        interval = self._gateway.settings.ws_recheck_s
        while True:
            await asyncio.sleep(interval)
            try:
                session = await self._gateway.sessions.lookup(
                    self._session_token, self._gateway.wall_now()
                )
                if session is None:
                    self._close(CLOSE_NOT_AUTHENTICATED, "the session has ended: log in again")
                    return
                now_owned = set(await self._gateway.account_ids(self._principal))
            except Exception as exc:  # the database blinked: try again next round
                self._log.warning("session re-check failed", error=repr(exc))
                continue
            gone, added = self.accounts - now_owned, now_owned - self.accounts
            # An unlinked account stops at once; a newly linked one joins the stream.
            self.accounts -= gone
            self.accounts |= added
            try:
                await self._hub.add_accounts(self, added)
                await self._hub.remove_accounts(self, gone)
            except Exception as exc:  # NATS reconnecting: the next round retries
                self.accounts -= added
                self._log.warning("account subscriptions not updated", error=repr(exc))

    # --- client messages -------------------------------------------------------------

    async def _dispatch(self, message: Incoming) -> None:
        if isinstance(message, Ping):
            self.send(_with_id({"type": "pong"}, message.id))
        elif isinstance(message, SubscribeQuotes):
            await self._subscribe(message)
        elif isinstance(message, UnsubscribeQuotes):
            await self._unsubscribe(message)
        else:
            self._command(message)

    async def _subscribe(self, message: SubscribeQuotes) -> None:
        new = [s for s in dict.fromkeys(message.symbols) if s not in self.symbols]
        limit = self._gateway.settings.ws_max_symbols
        if len(self.symbols) + len(new) > limit:
            self.send(
                error_message(
                    ErrorKind.VALIDATION_ERROR,
                    f"symbols: at most {limit} subscribed at once "
                    f"({len(self.symbols)} now, {len(new)} more asked)",
                    field="symbols",
                    request_id=message.id,
                )
            )
            return
        self.symbols.update(new)
        await self._hub.add_symbols(self, new)
        self._subscribed(message.id)

    async def _unsubscribe(self, message: UnsubscribeQuotes) -> None:
        gone = [s for s in dict.fromkeys(message.symbols) if s in self.symbols]
        self.symbols.difference_update(gone)
        for symbol in gone:
            self._forget("quote", symbol)
        await self._hub.remove_symbols(self, gone)
        self._subscribed(message.id)

    def _subscribed(self, request_id: str | None) -> None:
        self.send(_with_id({"type": "subscribed", "symbols": sorted(self.symbols)}, request_id))

    def _command(self, message: GenerateSuggestionMessage | ExecuteOrder) -> None:
        if len(self._in_flight) >= self._gateway.settings.ws_max_in_flight:
            self.send(
                error_message(
                    ErrorKind.RATE_LIMITED,
                    f"{len(self._in_flight)} requests are still in flight: wait for one",
                    request_id=message.id,
                )
            )
            return
        ids = actions.CommandIds.new()
        if message.id is not None:
            self._requests[ids.command_id] = message.id
            self._requests[ids.correlation_id] = message.id
            while len(self._requests) > 2 * REMEMBERED_REQUESTS:
                self._requests.popitem(last=False)
        task = asyncio.create_task(self._run_command(message, ids))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run_command(
        self, message: GenerateSuggestionMessage | ExecuteOrder, ids: actions.CommandIds
    ) -> None:
        """Send the command; its outcome reaches the client as the events it causes
        (tagged with the request id), or as an ``error`` when it is refused."""
        try:
            if isinstance(message, GenerateSuggestionMessage):
                await actions.generate(
                    self._gateway,
                    self._principal,
                    message.symbol,
                    message.account,
                    ids=ids,
                )
            else:
                await actions.execute(
                    self._gateway,
                    self._principal,
                    message.suggestion_id,
                    custom_credit=message.custom_credit,
                    confirm_warning=message.confirm_warning,
                    account=message.account,
                    ids=ids,
                )
        except SenexError as exc:
            self.send(error_of(exc, message.id))
        except Exception:
            self._log.exception("websocket command failed", command=message.type)
            self.send(
                error_message(
                    ErrorKind.INTERNAL_ERROR,
                    "internal error",
                    request_id=message.id,
                )
            )


def _with_id(message: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    if request_id is not None:
        message["request_id"] = request_id
    return message
