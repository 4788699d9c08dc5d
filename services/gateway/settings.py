"""The gateway's own settings (``SENEX_GATEWAY_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Where the public HTTP API listens, session lifetimes, login limits, timeouts."""

    model_config = SettingsConfigDict(env_prefix="SENEX_GATEWAY_", extra="ignore", frozen=True)

    #: Interface and port of the public API (REST and the WebSocket).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Seconds a session lives after login (absolute, not sliding).
    session_ttl_s: int = Field(default=12 * 3600, ge=60)
    #: ``auto``: the cookie is Secure when the request came over https (directly or as
    #: told by a proxy's X-Forwarded-Proto); ``always``/``never`` force it.
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    #: Login attempts allowed per username, and per client address, within the window.
    login_attempts_per_user: int = Field(default=5, ge=1)
    login_attempts_per_address: int = Field(default=20, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)
    #: Seconds to wait for an owning service's answer to a query or command.
    command_timeout_s: float = Field(default=10.0, gt=0)
    #: Generation asks market data for a chain snapshot first: it may take longer.
    generate_timeout_s: float = Field(default=30.0, gt=0)
    #: Database connections the gateway keeps open for users, sessions and settings.
    db_pool_size: int = Field(default=4, ge=1, le=64)

    # --- WebSocket (/ws) ---
    #: Browser origins allowed to open /ws besides the gateway's own (scheme://host[:port]),
    #: for a UI served from another origin. See `services.gateway.ws.route`.
    allowed_origins: tuple[str, ...] = ()
    #: Symbols one connection may be subscribed to at once.
    ws_max_symbols: int = Field(default=100, ge=1, le=1000)
    #: Non-quote messages queued for a client before it is disconnected as too slow.
    ws_queue_limit: int = Field(default=1000, ge=10)
    #: Commands (generate, execute) one connection may have in flight at once.
    ws_max_in_flight: int = Field(default=4, ge=1)
    #: Push throttles (DOMAIN.md 8): quotes per symbol, valuations per position,
    #: balances per account; latest wins within a window.
    quote_interval_s: float = Field(default=1.0, gt=0)
    position_interval_s: float = Field(default=10.0, gt=0)
    balance_interval_s: float = Field(default=30.0, gt=0)
    #: Quote leases asked of market data (WatchSymbols), renewed at half their length.
    quote_lease_s: int = Field(default=120, ge=10)
    #: How often a connection re-checks its session (logout, expiry) and accounts.
    ws_recheck_s: float = Field(default=30.0, gt=0)
