"""The account streamer websocket (the SDK's ``AlertStreamer``, TASTYTRADE_PROTOCOL.md §7).

Client frames carry ``auth-token`` (``Bearer <access token>``), ``action`` and
``request-id``; every one is answered with ``{"status": "ok"|"error", "action", "request-id",
...}`` (no top-level ``type``). ``connect`` (alias ``account-subscribe``) subscribes the
customer's own accounts; the hub then pushes ``Order``, ``AccountBalance`` and
``CurrentPosition`` notifications for them.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import orjson
from starlette.websockets import WebSocket

from services.simulator.errors import ApiError
from services.simulator.notifications import AccountSubscriber, QueuedSocket, StreamHub

log = logging.getLogger(__name__)

SUBSCRIBE_ACTIONS = ("connect", "account-subscribe")
OK_ACTIONS = ("heartbeat", "public-watchlists-subscribe", "quote-alerts-subscribe")


class AccountStreamerSession(QueuedSocket):
    """One account-streamer connection."""

    def __init__(self, websocket: WebSocket, hub: StreamHub) -> None:
        super().__init__("account", websocket)
        self.hub = hub
        self.session_id = "ws-" + secrets.token_hex(6)
        self.customer: int | None = None
        self.subscriber = AccountSubscriber(set(), self.send)

    async def run(self) -> None:
        """Accept and serve until the client leaves or the socket is dropped."""
        await self.websocket.accept()
        try:
            await self.serve(self.hub, self._reader())
        finally:
            self.hub.unsubscribe(self.subscriber)

    async def _reader(self) -> None:
        while True:
            raw = await self.websocket.receive_text()
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.send_json({"status": "error", "message": "invalid JSON"})
                continue
            if not isinstance(message, dict):
                self.send_json({"status": "error", "message": "message must be an object"})
                continue
            self.send_json(self.handle(message))

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """The reply to one client frame."""
        action = message.get("action")
        reply: dict[str, Any] = {"action": action}
        if "request-id" in message:
            reply["request-id"] = message["request-id"]
        try:
            customer = self.hub.broker.authenticate(_str_or_none(message.get("auth-token")))
        except ApiError as error:
            return reply | {"status": "error", "message": error.message}
        if self.customer is not None and customer != self.customer:
            return reply | {"status": "error", "message": "token belongs to another customer"}
        self.customer = customer
        if action in SUBSCRIBE_ACTIONS:
            value = message.get("value")
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return reply | {"status": "error", "message": "value must list account numbers"}
            owned = {a.number for a in self.hub.broker.store.accounts(customer)}
            foreign = [v for v in value if v not in owned]
            if foreign:
                return reply | {
                    "status": "error",
                    "message": f"not authorized for account {', '.join(foreign)}",
                }
            self.subscriber.accounts.update(value)
            self.hub.subscribe(self.subscriber)
            return reply | {
                "status": "ok",
                "web-socket-session-id": self.session_id,
                "value": sorted(self.subscriber.accounts),
            }
        if action in OK_ACTIONS:
            return reply | {"status": "ok", "web-socket-session-id": self.session_id}
        if not self.subscriber.accounts:
            return reply | {"status": "error", "message": "connect-not-completed"}
        return reply | {"status": "error", "message": f"unknown action {action!r}"}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
