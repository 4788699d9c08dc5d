"""SDK and HTTP failures translated into the typed errors of DOMAIN.md section 7.

The SDK raises one string-carrying ``TastytradeError`` for every non-2xx answer and no
status code. The session's response hook records the status of each exchange in a
`CallTrace` bound to the calling task, so `translate` can tell a 401 from a 429 or a
500. Messages carry the broker's reason but never a request body, header or token.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum

import httpx2
from pydantic import ValidationError
from tastytrade.utils import TastytradeError

from libs.contracts.errors import (
    ApiError,
    AuthFailed,
    BrokerTimeout,
    BrokerUnavailable,
    InsufficientBuyingPower,
    NotFound,
    OrderRejectedError,
    RateLimited,
    SenexError,
    ValidationFailed,
)


class Operation(Enum):
    """What kind of request failed: an order submission turns a 4xx into a rejection."""

    READ = "read"
    ORDER = "order"
    DRY_RUN = "dry-run"


@dataclass
class CallTrace:
    """The last HTTP answer seen by one adapter call (written by the response hook)."""

    status: int | None = None
    path: str | None = None
    retry_after: str | None = None
    statuses: list[int] = field(default_factory=list)

    def record(self, status: int, path: str, retry_after: str | None) -> None:
        """Remember one answer."""
        self.status = status
        self.path = path
        self.retry_after = retry_after
        self.statuses.append(status)


#: The trace of the adapter call running in the current task, if any.
CURRENT_TRACE: ContextVar[CallTrace | None] = ContextVar("broker_call_trace", default=None)

_OAUTH_PATH = "/oauth/token"
_BUYING_POWER = re.compile(r"buying[ _-]?power", re.IGNORECASE)


def broker_reason(exc: TastytradeError) -> str:
    """The broker's message without the SDK's trailing newlines ("code: message; ...")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or "no reason given"


def _reason_codes(reason: str) -> str:
    return ",".join(part.split(":", 1)[0].strip() for part in reason.split(";") if ":" in part)


def is_auth_refusal(trace: CallTrace) -> bool:
    """The last answer was 401, or the token endpoint refused the credentials."""
    if trace.status == 401:
        return True
    return trace.path == _OAUTH_PATH and trace.status is not None and 400 <= trace.status < 500


def translate(exc: BaseException, trace: CallTrace, operation: Operation) -> SenexError:
    """The `SenexError` for ``exc``, raised by an SDK call described by ``trace``.

    Transport failures: connect refused/unreachable -> BROKER_UNAVAILABLE; any other
    failure after the request may have left (timeouts, dropped connections) ->
    BROKER_TIMEOUT, because the broker may have acted on it.
    """
    if isinstance(exc, SenexError):
        return exc
    if isinstance(exc, httpx2.ConnectError):
        return BrokerUnavailable(f"cannot reach the broker: {type(exc).__name__}")
    if isinstance(exc, httpx2.ConnectTimeout | httpx2.PoolTimeout):
        # Nothing was sent; still a timeout for the retry policy, and harmless to look up.
        return BrokerTimeout(f"the broker did not accept a connection in time ({exc!s})")
    if isinstance(exc, httpx2.TimeoutException):
        return BrokerTimeout("the broker did not answer in time; the outcome is unknown")
    if isinstance(exc, httpx2.TransportError):
        return BrokerTimeout(
            f"the connection to the broker failed mid-request ({type(exc).__name__}); "
            "the outcome is unknown"
        )
    if isinstance(exc, ValidationError | KeyError | TypeError | ValueError):
        return ApiError(f"unexpected answer from the broker: {type(exc).__name__}")
    if not isinstance(exc, TastytradeError):
        return ApiError(f"broker call failed: {type(exc).__name__}")
    return _translate_status(broker_reason(exc), trace, operation)


def _translate_status(reason: str, trace: CallTrace, operation: Operation) -> SenexError:
    status = trace.status
    details = {"http_status": str(status)} if status is not None else {}
    codes = _reason_codes(reason)
    if codes:
        details["broker_codes"] = codes
    if status is None or 200 <= status < 300:
        return ApiError(f"unexpected answer from the broker: {reason}", details=details)
    if is_auth_refusal(trace):
        return AuthFailed(f"the broker refused the credentials: {reason}", details=details)
    if status == 403:
        return AuthFailed(f"the broker denied access: {reason}", details=details)
    if status == 429:
        if trace.retry_after:
            details["retry_after"] = trace.retry_after
        return RateLimited(f"the broker is rate limiting requests: {reason}", details=details)
    if status >= 500:
        return ApiError(f"broker error {status}: {reason}", details=details)
    if status == 404:
        return NotFound(f"the broker has no such resource: {reason}", details=details)
    if operation is not Operation.READ:
        if _BUYING_POWER.search(reason):
            return InsufficientBuyingPower(
                f"the broker refused the order for buying power: {reason}", details=details
            )
        return OrderRejectedError(reason, details=details)
    return ValidationFailed(f"the broker refused the request: {reason}", details=details)
