"""``/api/auth/login``, ``/api/auth/logout`` and ``/api/me``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.gateway.auth import SESSION_COOKIE
from services.gateway.context import GatewayDep, PrincipalDep, account_out
from services.gateway.errors import ErrorResponse, LoginFailed, LoginRateLimited
from services.gateway.models import (
    AccountOut,
    LoginRequest,
    LoginResponse,
    LogoutResponse,
    MeResponse,
    UserOut,
)

router = APIRouter(prefix="/api", tags=["auth"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
}


def _secure(request: Request, mode: str) -> bool:
    """Whether the cookie gets the Secure flag (see GatewaySettings.cookie_secure)."""
    if mode != "auto":
        return mode == "always"
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _client_address(request: Request) -> str:
    # The socket's peer. Behind a reverse proxy this is the proxy: X-Forwarded-For is
    # not trusted, because any client could set it to dodge the per-address limit.
    return request.client.host if request.client is not None else "unknown"


@router.post(
    "/auth/login",
    response_model=LoginResponse,
    responses={401: {"model": ErrorResponse}, 429: {"model": ErrorResponse}},
)
async def login(
    body: LoginRequest, request: Request, response: Response, gateway: GatewayDep
) -> LoginResponse:
    """Check the password; set the session cookie and return the CSRF token."""
    address = _client_address(request)
    now = gateway.monotonic()
    wait = gateway.limiter.check(body.username, address, now)
    if wait > 0:
        raise LoginRateLimited("too many login attempts: try again later", retry_after_s=wait)
    user = await gateway.users.authenticate(body.username, body.password)
    gateway.limiter.record(body.username, address, now, succeeded=user is not None)
    if user is None:
        raise LoginFailed("wrong username or password")
    token, session = await gateway.sessions.create(user.user_id, gateway.wall_now())
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=gateway.settings.session_ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request, gateway.settings.cookie_secure),
    )
    return LoginResponse(
        user_id=user.user_id, csrf_token=session.csrf_token, expires_at=session.expires_at
    )


@router.post("/auth/logout", response_model=LogoutResponse, responses=_ERRORS)
async def logout(
    principal: PrincipalDep, request: Request, response: Response, gateway: GatewayDep
) -> LogoutResponse:
    """End the session (server side) and clear the cookie."""
    await gateway.sessions.delete(principal.session.token_hash)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request, gateway.settings.cookie_secure),
    )
    return LogoutResponse()


@router.get("/me", response_model=MeResponse, responses=_ERRORS)
async def me(principal: PrincipalDep, gateway: GatewayDep) -> MeResponse:
    """The logged-in user and their linked accounts."""
    user = await gateway.users.get(principal.user_id)
    links = await gateway.accounts.links(principal.user_id)
    return MeResponse(
        user=UserOut(user_id=user.user_id, created_at=user.created_at),
        accounts=[AccountOut.model_validate(account_out(link)) for link in links],
        mode=gateway.accounts.mode,
        csrf_token=principal.session.csrf_token,
    )
