"""The gateway's own settings (``SENEX_GATEWAY_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Where the public HTTP API listens, session lifetimes, login limits, timeouts."""

    model_config = SettingsConfigDict(env_prefix="SENEX_GATEWAY_", extra="ignore", frozen=True)

    #: Interface and port of the public API (REST now, the WebSocket later).
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
