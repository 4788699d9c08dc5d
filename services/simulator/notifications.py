"""In-process publish/subscribe between the broker and the open websockets.

The :class:`Broker` emits :class:`BrokerEvent` s; the :class:`StreamHub` turns them into
account-streamer notifications (``Order``, ``CurrentPosition``, ``AccountBalance``) for the
sockets subscribed to that account, and keeps a registry of every open socket so the
control API can drop them (``POST /sim/sockets/drop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from services.simulator import wire
from services.simulator.broker import Broker, BrokerEvent
from services.simulator.store import PositionRow

log = logging.getLogger(__name__)

SOCKET_KINDS = ("dxlink", "account")
#: Close code sent to clients when the control API drops their socket (service restart).
DROP_CLOSE_CODE = 1012


class StreamSocket(Protocol):
    """What the hub needs of an open websocket session."""

    kind: str

    def close_soon(self, code: int) -> None:
        """Close the socket from the event loop as soon as possible."""


@dataclass
class AccountSubscriber:
    """One account-streamer socket's interest: which accounts, and where to send."""

    accounts: set[str]
    send: Callable[[bytes], None]


@dataclass
class StreamHub:
    """Open sockets, DXLink quote tokens and account subscriptions over one broker."""

    broker: Broker
    sockets: set[StreamSocket] = field(default_factory=set)
    subscribers: list[AccountSubscriber] = field(default_factory=list)
    #: DXLink token -> customer id.
    quote_tokens: dict[str, int] = field(default_factory=dict)
    #: Last Order document sent per order id, so unchanged re-saves are not repeated.
    _last_orders: dict[int, bytes] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None

    def __post_init__(self) -> None:
        self.broker.listeners.append(self.on_broker_event)

    def bind_loop(self) -> None:
        """Remember the serving event loop (events from other threads hop onto it)."""
        self._loop = asyncio.get_running_loop()

    # DXLink tokens

    def issue_quote_token(self, customer: int) -> str:
        """A DXLink token for ``customer`` (valid while the simulator runs)."""
        token = "dx-" + secrets.token_urlsafe(18)
        self.quote_tokens[token] = customer
        return token

    # socket registry

    def register(self, socket: StreamSocket) -> None:
        """Track an open socket."""
        self.sockets.add(socket)

    def unregister(self, socket: StreamSocket) -> None:
        """Forget a closed socket."""
        self.sockets.discard(socket)

    def drop(self, kind: str) -> int:
        """Close the open sockets of ``kind`` ("dxlink", "account" or "all"); how many."""
        dropped = [s for s in list(self.sockets) if kind in ("all", s.kind)]
        for socket in dropped:
            socket.close_soon(DROP_CLOSE_CODE)
        return len(dropped)

    def count(self, kind: str = "all") -> int:
        """Open sockets of ``kind``."""
        return sum(1 for s in self.sockets if kind in ("all", s.kind))

    # account notifications

    def subscribe(self, subscriber: AccountSubscriber) -> None:
        """Start delivering notifications of ``subscriber.accounts``."""
        if subscriber not in self.subscribers:
            self.subscribers.append(subscriber)

    def unsubscribe(self, subscriber: AccountSubscriber) -> None:
        """Stop delivering to ``subscriber``."""
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)

    def on_broker_event(self, event: BrokerEvent) -> None:
        """Broker listener: build the notification and deliver it on the event loop."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: BrokerEvent) -> None:
        targets = [s for s in self.subscribers if event.account in s.accounts]
        if event.kind == "order" and event.order is not None:
            body = orjson.dumps(event.order)
            order_id = int(event.order["id"])
            if self._last_orders.get(order_id) == body:
                return
            self._last_orders[order_id] = body
        if not targets:
            return
        frame = self.notification(event)
        if frame is None:
            return
        for target in targets:
            target.send(frame)

    def notification(self, event: BrokerEvent) -> bytes | None:
        """The account-streamer frame of ``event`` (None when there is nothing to say)."""
        broker = self.broker
        now = broker.now()
        if event.kind == "order" and event.order is not None:
            kind, payload = "Order", event.order
        elif event.kind == "balance":
            kind = "AccountBalance"
            payload = wire.balance(event.account, broker.account_view(event.account), now)
        elif event.kind == "position" and event.symbol is not None:
            kind = "CurrentPosition"
            row = next(
                (p for p in broker.store.positions(event.account) if p.symbol == event.symbol),
                None,
            )
            if row is None:
                payload = wire.position(
                    PositionRow(event.account, event.symbol, 0, Decimal(0), now, now), broker
                )
                payload["quantity-direction"] = "Zero"
            else:
                payload = wire.position(row, broker)
        else:
            return None
        return orjson.dumps(
            {"type": kind, "data": payload, "timestamp": int(now.timestamp() * 1000)}
        )


class QueuedSocket:
    """A websocket served by one reader coroutine and one writer draining an outbox.

    Anything (the hub, a pusher task, the reader) queues frames with :meth:`send`;
    :meth:`close_soon` queues a close, which ends the session.
    """

    def __init__(self, kind: str, websocket: WebSocket) -> None:
        self.kind = kind
        self.websocket = websocket
        self._outbox: asyncio.Queue[bytes | str | int] = asyncio.Queue()

    def send(self, frame: bytes | str) -> None:
        """Queue a text frame."""
        self._outbox.put_nowait(frame)

    def send_json(self, message: Any) -> None:
        """Queue a JSON text frame."""
        self._outbox.put_nowait(orjson.dumps(message).decode())

    def close_soon(self, code: int) -> None:
        """Queue a close with ``code``."""
        self._outbox.put_nowait(code)

    async def _writer(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, int):
                await self.websocket.close(code=item)
                return
            await self.websocket.send_text(item if isinstance(item, str) else item.decode())

    async def serve(self, hub: StreamHub, *tasks: Coroutine[Any, Any, None]) -> None:
        """Run the writer and ``tasks`` (the reader first) until one ends; then clean up."""
        hub.register(self)
        running = [asyncio.ensure_future(self._writer())]
        running += [asyncio.ensure_future(t) for t in tasks]
        try:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = None if task.cancelled() else task.exception()
                if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                    log.error("%s socket failed", self.kind, exc_info=exc)
        finally:
            hub.unregister(self)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if self.websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=1000)
