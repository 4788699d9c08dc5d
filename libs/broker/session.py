"""One SDK session per account: OAuth refresh ahead of expiry, paper redirect, status trace.

The SDK refreshes lazily 60 s before expiry; `BrokerSession.ensure_fresh` refreshes
earlier (``refresh_margin_s``) under a lock, so concurrent calls share one refresh.
In paper mode a request event hook rewrites every URL (REST and both websockets) to
the simulator, so the unmodified SDK talks to it (TASTYTRADE_PROTOCOL.md section 1).
A response hook records each answer's status in the calling task's `CallTrace`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx2
from tastytrade import Session

from libs.broker.errors import CURRENT_TRACE
from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.runtime.settings import TradingMode

_SCHEMES = {"https": "http", "wss": "ws", "http": "http", "ws": "ws"}


def paper_redirect(simulator_url: str) -> Any:
    """A request hook sending every request to ``simulator_url`` (scheme, host and port)."""
    parts = urlsplit(simulator_url)
    if not parts.hostname or parts.port is None:
        raise ValueError(f"simulator URL {simulator_url!r} needs a host and a port")
    host, port = parts.hostname, parts.port
    secure = parts.scheme == "https"

    async def to_simulator(request: httpx2.Request) -> None:
        scheme = request.url.scheme
        if not secure:
            scheme = _SCHEMES.get(scheme, scheme)
        request.url = request.url.copy_with(scheme=scheme, host=host, port=port)

    return to_simulator


async def record_status(response: httpx2.Response) -> None:
    """Response hook: remember the status for `libs.broker.errors.translate`."""
    trace = CURRENT_TRACE.get()
    if trace is not None:
        trace.record(
            response.status_code,
            response.request.url.path,
            response.headers.get("retry-after"),
        )


class BrokerSession:
    """The SDK session of one account (or of one credential check)."""

    def __init__(
        self,
        credentials: BrokerCredentials,
        settings: BrokerSettings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network (tests answer from a function)."""
        hooks: dict[str, list[Any]] = {"request": [], "response": [record_status]}
        kwargs: dict[str, Any] = {"timeout": httpx2.Timeout(settings.request_timeout_s)}
        if transport is not None:
            kwargs["transport"] = transport
        if settings.mode is TradingMode.PAPER:
            hooks["request"].append(paper_redirect(settings.simulator_url))
            # Proxy variables must not divert loopback traffic to the simulator.
            kwargs["trust_env"] = False
        self._sdk = Session(
            credentials.client_secret.get_secret_value(),
            credentials.refresh_token.get_secret_value(),
            event_hooks=hooks,
            **kwargs,
        )
        self._margin = settings.refresh_margin_s
        self._lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        # The SDK session holds the secret and tokens: never show it.
        return f"BrokerSession(expires_in={self.expires_in:.0f}s)"

    @property
    def sdk(self) -> Session:
        """The SDK session (for the adapter only)."""
        return self._sdk

    @property
    def expires_in(self) -> float:
        """Seconds until the access token expires (negative when it has)."""
        return self._sdk.session_expiration - time.time()

    async def ensure_fresh(self) -> None:
        """Refresh the access token when it is within the margin of its expiry."""
        if self.expires_in > self._margin:
            return
        async with self._lock:
            if self.expires_in > self._margin:
                return
            await self._sdk.refresh(force=True)

    async def force_refresh(self, stale_expiration: float) -> None:
        """Refresh after a 401, unless another call already did since it was seen."""
        async with self._lock:
            if self._sdk.session_expiration != stale_expiration:
                return
            await self._sdk.refresh(force=True)

    def expire(self) -> None:
        """Treat the current token as expired (the next call refreshes)."""
        self._sdk.session_expiration = 0.0

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if not self._closed:
            self._closed = True
            await self._sdk._client.aclose()
