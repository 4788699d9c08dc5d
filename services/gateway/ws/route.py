"""``/ws``: the handshake's checks, then a `Connection`.

Authentication is the session cookie, as for REST. The CSRF token is not asked for:
the handshake is a GET that changes nothing, and every command sent afterwards rides a
connection whose origin was checked. That check is what stops cross-site WebSocket
hijacking (a page elsewhere opening ``/ws`` with the victim's cookie): browsers always
send ``Origin`` on a WebSocket handshake and scripts cannot forge it, so the handshake
is refused unless ``Origin`` is the gateway's own (``http(s)://`` + the ``Host`` the
browser addressed) or listed in ``SENEX_GATEWAY_ALLOWED_ORIGINS``. A handshake without
``Origin`` comes from a non-browser client (CLI, bench), which no page can drive, and
still needs the session cookie. SameSite=Strict on the cookie is a second, independent
guard.

Refusals accept the handshake and close at once with a code and a reason (4403 for the
origin, 4401 for the session): a refused handshake reaches a browser's script only as
a bare 1006, which says nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket

from libs.runtime.log import get_logger
from services.gateway.auth import SESSION_COOKIE
from services.gateway.context import Gateway, Principal
from services.gateway.ws.connection import Connection
from services.gateway.ws.hub import Hub
from services.gateway.ws.protocol import CLOSE_NOT_AUTHENTICATED, CLOSE_ORIGIN_REFUSED

router = APIRouter()
_log = get_logger("gateway.ws")


def origin_allowed(origin: str | None, host: str | None, allowed: Collection[str]) -> bool:
    """Whether a handshake with ``Origin: origin`` to ``Host: host`` may proceed."""
    if origin is None:
        return True  # not a browser (see the module docstring)
    wanted = origin.strip().rstrip("/").lower()
    if wanted in {a.strip().rstrip("/").lower() for a in allowed}:
        return True
    if not host:
        return False
    try:
        parts = urlsplit(wanted)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path or parts.query:
        return False
    return parts.netloc == host.strip().lower()


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    """Live quotes, the user's events and trading commands (see `ws.protocol`)."""
    gateway: Gateway = websocket.app.state.gateway
    hub: Hub = websocket.app.state.hub
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), gateway.settings.allowed_origins):
        _log.warning("websocket origin refused", origin=origin[:200] if origin else None)
        await websocket.accept()
        await websocket.close(CLOSE_ORIGIN_REFUSED, "origin not allowed")
        return
    token = websocket.cookies.get(SESSION_COOKIE)
    session = await gateway.sessions.lookup(token, gateway.wall_now()) if token else None
    if token is None or session is None:
        await websocket.accept()
        await websocket.close(CLOSE_NOT_AUTHENTICATED, "not logged in: log in first")
        return
    principal = Principal(session.user_id, session)
    accounts = await gateway.account_ids(principal)
    await websocket.accept()
    await Connection(websocket, gateway, hub, principal, token, accounts).run()
