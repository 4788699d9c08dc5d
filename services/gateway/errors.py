"""One JSON error shape and one table from error kind to HTTP status.

Every failure the gateway answers is ``{"error": {"kind", "message", "field", "details"}}``
with ``kind`` one of `ErrorKind`. A typed `SenexError` raised anywhere (by a route, or
by an owning service and re-raised by ``Bus.request``) is answered with the status of
its kind from `STATUS_BY_KIND`; the gateway's own authentication errors carry a status
of their own (`GatewayError.STATUS`), because "your session is missing" (401) and "the
broker refused the stored credentials" (both AUTH_FAILED) must not look alike to a
browser, which treats 401 as "log in again".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.contracts.base import ContractModel
from libs.contracts.errors import ErrorKind, SenexError
from libs.runtime.log import get_logger

#: The HTTP status of each error kind (DOMAIN.md 7 plus the platform's own kinds).
STATUS_BY_KIND: Mapping[ErrorKind, int] = MappingProxyType(
    {
        # Bad input, or a trade the rules refuse: the request cannot succeed as sent.
        ErrorKind.VALIDATION_ERROR: 422,
        ErrorKind.STRIKE_NOT_FOUND: 422,
        ErrorKind.NO_EXPIRATION: 422,
        ErrorKind.CONFLICTING_POSITION: 422,
        ErrorKind.POSITION_LIMIT: 422,
        ErrorKind.NO_CREDIT: 422,
        ErrorKind.RISK_BUDGET_EXCEEDED: 422,
        ErrorKind.INSUFFICIENT_BUYING_POWER: 422,
        ErrorKind.ORDER_REJECTED: 422,
        # Not possible in the current state (of the suggestion, the market, the account).
        ErrorKind.RISK_WARNING_UNCONFIRMED: 409,
        ErrorKind.INVALID_STATE: 409,
        ErrorKind.MARKET_CLOSED: 409,
        ErrorKind.TRADING_SUSPENDED: 409,
        ErrorKind.NOT_FOUND: 404,
        ErrorKind.RATE_LIMITED: 429,
        # The broker (upstream) failed or refused our stored credentials.
        ErrorKind.AUTH_FAILED: 502,
        ErrorKind.API_ERROR: 502,
        ErrorKind.BROKER_UNAVAILABLE: 502,
        ErrorKind.BROKER_TIMEOUT: 504,
        # Transient on our side: retry.
        ErrorKind.MARKET_DATA_STALE: 503,
        ErrorKind.SERVICE_UNAVAILABLE: 503,
        ErrorKind.INTERNAL_ERROR: 500,
    }
)


class GatewayError(SenexError):
    """An error of the gateway itself, answered with its own HTTP status."""

    STATUS: ClassVar[int] = 500
    #: Extra response headers (Retry-After, WWW-Authenticate).
    headers: Mapping[str, str] = MappingProxyType({})


class NotAuthenticated(GatewayError):
    """No valid session cookie: log in."""

    KIND = ErrorKind.AUTH_FAILED
    STATUS = 401


class LoginFailed(GatewayError):
    """Wrong username or password (the same answer for both, so names are not probed)."""

    KIND = ErrorKind.AUTH_FAILED
    STATUS = 401


class CsrfRejected(GatewayError):
    """A state-changing request without the session's CSRF token."""

    KIND = ErrorKind.AUTH_FAILED
    STATUS = 403


class LoginRateLimited(GatewayError):
    """Too many login attempts for the username or from the address."""

    KIND = ErrorKind.RATE_LIMITED
    STATUS = 429

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(message, details={"retry_after_s": str(seconds)})
        self.headers = MappingProxyType({"Retry-After": str(seconds)})


class CredentialsRefused(GatewayError):
    """The broker refused the credentials a user entered: bad input, not an outage."""

    KIND = ErrorKind.AUTH_FAILED
    STATUS = 422


def http_status(error: SenexError) -> int:
    """The status a response to ``error`` carries."""
    if isinstance(error, GatewayError):
        return error.STATUS
    return STATUS_BY_KIND.get(error.kind, 500)


class ErrorBody(ContractModel):
    """The ``error`` object of every failed response."""

    kind: ErrorKind
    message: str
    field: str | None = None
    """The offending input field (dotted path), for VALIDATION_ERROR."""
    details: dict[str, str] = Field(default_factory=dict)


class ErrorResponse(ContractModel):
    """Every failed response: ``{"error": {...}}``."""

    error: ErrorBody


def error_response(
    status: int,
    kind: ErrorKind,
    message: str,
    *,
    field: str | None = None,
    details: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON response of one error."""
    body = ErrorResponse(
        error=ErrorBody(kind=kind, message=message, field=field, details=dict(details or {}))
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def senex_error_response(error: SenexError) -> JSONResponse:
    """The response to a typed error."""
    headers = error.headers if isinstance(error, GatewayError) else None
    return error_response(
        http_status(error),
        error.kind,
        error.message,
        field=error.field,
        details=error.details,
        headers=headers,
    )


def _field_path(loc: Sequence[Any]) -> str:
    """``("body", "custom_credit")`` -> ``custom_credit``; the part after the source."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts)


def validation_error_response(errors: Sequence[Mapping[str, Any]]) -> JSONResponse:
    """422 naming the first offending field (400 when the body is not JSON at all)."""
    found = [(_field_path(e.get("loc", ())), str(e.get("msg", "invalid"))) for e in errors]
    if not found:
        return error_response(422, ErrorKind.VALIDATION_ERROR, "invalid request")
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            400,
            ErrorKind.VALIDATION_ERROR,
            "the request body is not valid JSON",
            field="body",
            details={"body": found[0][1]},
        )
    path, msg = found[0]
    message = f"{path}: {msg}"
    if len(found) > 1:
        message += f" (and {len(found) - 1} more)"
    return error_response(422, ErrorKind.VALIDATION_ERROR, message, field=path, details=dict(found))


_HTTP_KINDS: Mapping[int, ErrorKind] = MappingProxyType(
    {
        401: ErrorKind.AUTH_FAILED,
        403: ErrorKind.AUTH_FAILED,
        404: ErrorKind.NOT_FOUND,
        429: ErrorKind.RATE_LIMITED,
        503: ErrorKind.SERVICE_UNAVAILABLE,
    }
)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure, the framework's own included, in the one shape."""
    log = get_logger("gateway.errors")

    async def on_senex(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SenexError)
        status = http_status(exc)
        if status >= 500:
            log.warning("request failed", kind=exc.kind.value, error=exc.message)
        return senex_error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_error_response(exc.errors())

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        kind = _HTTP_KINDS.get(
            status, ErrorKind.VALIDATION_ERROR if status < 500 else ErrorKind.INTERNAL_ERROR
        )
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(status, kind, message, headers=exc.headers)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug: logged with its trace; the browser learns nothing about the inside.
        log.error("unhandled error", error=repr(exc), exc_info=exc)
        return error_response(500, ErrorKind.INTERNAL_ERROR, "internal error")

    app.add_exception_handler(SenexError, on_senex)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
