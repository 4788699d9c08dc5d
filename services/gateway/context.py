"""What every route needs: the gateway's parts, the logged-in user, their accounts.

Routes receive a `Gateway` and a `Principal` through FastAPI dependencies. The
principal exists only for a live session, and only once the CSRF token was checked for
a state-changing method, so no route can forget either check.

Accounts: every ``/trading/api`` route takes an optional ``account`` query parameter.
Without it, a user with one account uses that one; a user with several must name one
for account-wide reads and actions, while id-based reads (an order, a suggestion, an
event chain) look in each of the user's accounts. An account that is not the user's
answers NOT_FOUND exactly like one that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request

from libs.broker.vault import AccountLink
from libs.contracts.commands import Command, Reply
from libs.contracts.errors import InvalidState, NotFound, ValidationFailed
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from services.gateway.accounts import Accounts
from services.gateway.auth import CSRF_HEADER, SESSION_COOKIE, Session, SessionStore, check_csrf
from services.gateway.errors import NotAuthenticated
from services.gateway.ratelimit import LoginLimiter
from services.gateway.settings import GatewaySettings
from services.gateway.users import UserStore

R = TypeVar("R", bound=Reply)
T = TypeVar("T")

#: A placeholder account for market-wide queries of a user without any account (the
#: command envelope requires one; market data does not use it).
MARKET_ACCOUNT = "market"


@dataclass
class Gateway:
    """The gateway's parts, shared by every request."""

    settings: GatewaySettings
    users: UserStore
    sessions: SessionStore
    accounts: Accounts
    limiter: LoginLimiter
    bus_of: Callable[[], Bus]
    """The bus connection (a callable: it exists only once the service started)."""
    clock: Clock
    """Business time, for the events the gateway publishes."""
    wall_now: Callable[[], datetime]
    """Real time, for session expiry (never the simulator's clock)."""
    monotonic: Callable[[], float]
    """For the login rate limiter's windows."""

    async def ask(self, command: Command, expected: type[R], timeout: float | None = None) -> R:
        """Send ``command`` to its owning service; its reply, or its typed error raised."""
        bus = self.bus_of()
        return await bus.request(
            command, expected, timeout=timeout or self.settings.command_timeout_s
        )

    async def account_ids(self, principal: Principal) -> list[str]:
        """The user's account numbers."""
        return [link.account_number for link in await self.accounts.links(principal.user_id)]

    async def account(self, principal: Principal, wanted: str | None) -> str:
        """The one account a request acts on (see the module docstring)."""
        if wanted is not None:
            return (await self.accounts.owned(principal.user_id, wanted)).account_number
        owned = await self.account_ids(principal)
        if not owned:
            raise InvalidState(
                "no broker account is linked yet: link one under broker-link first",
                details={"user_id": principal.user_id},
            )
        if len(owned) > 1:
            raise ValidationFailed(
                f"account: you have several accounts ({', '.join(owned)}); name one",
                field="account",
            )
        return owned[0]

    async def accounts_to_search(self, principal: Principal, wanted: str | None) -> list[str]:
        """``wanted`` (if it is the user's), else every account of the user."""
        if wanted is not None:
            return [(await self.accounts.owned(principal.user_id, wanted)).account_number]
        return await self.account_ids(principal)

    async def market_account(self, principal: Principal) -> str:
        """An account to address a market-wide query with."""
        owned = await self.account_ids(principal)
        return owned[0] if owned else MARKET_ACCOUNT

    async def first_found(
        self,
        principal: Principal,
        wanted: str | None,
        ask: Callable[[str], Awaitable[T]],
        what: str,
    ) -> T:
        """``ask(account)`` in each searched account; the first answer that is not NOT_FOUND."""
        for account in await self.accounts_to_search(principal, wanted):
            try:
                return await ask(account)
            except NotFound:
                continue
        raise NotFound(f"{what} not found")


@dataclass(frozen=True, slots=True)
class Principal:
    """The logged-in user of a request."""

    user_id: str
    session: Session


def gateway_of(request: Request) -> Gateway:
    """The `Gateway` the app was built with."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(gateway_of)]


async def authenticated(request: Request, gateway: GatewayDep) -> Principal:
    """The session's user; 401 without a live session, 403 on a missing/wrong CSRF token."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("log in first")
    session = await gateway.sessions.lookup(token, gateway.wall_now())
    if session is None:
        raise NotAuthenticated("the session has expired or ended: log in again")
    check_csrf(request.method, session.csrf_token, request.headers.get(CSRF_HEADER))
    return Principal(session.user_id, session)


PrincipalDep = Annotated[Principal, Depends(authenticated)]
AccountQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The account to act on; optional when you have only one.",
    ),
]


def account_out(link: AccountLink) -> dict[str, object]:
    """The public fields of a link."""
    return {
        "account_number": link.account_number,
        "mode": link.mode,
        "nickname": link.nickname,
        "linked_at": link.linked_at,
    }


# A JSON "\u0000" escape not itself escaped (preceded by an even number of backslashes).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def refuse_nul(request: Request) -> None:
    """Refuse NUL characters anywhere in a request (VALIDATION_ERROR, 422).

    PostgreSQL text cannot hold them, so one reaching a query (a username, an e-mail
    address, a rejection reason stored by strategy) would fail as a server error deep
    inside a service; refused at the door, every route is covered at once.
    """
    if "\x00" in request.url.path or b"%00" in request.scope.get("query_string", b"").lower():
        raise ValidationFailed("NUL characters are not allowed in the URL", field="url")
    body = await request.body()
    if b"\x00" in body or _JSON_NUL.search(body):
        raise ValidationFailed("NUL characters are not allowed in the body", field="body")
