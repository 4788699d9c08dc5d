"""Error vocabulary: the kinds a user can see, the wire reply, and typed exceptions.

A service raises a ``SenexError`` subclass; the command shell turns it into an
``ErrorReply`` with ``to_reply()``; the caller turns the reply back into the same
exception class with ``SenexError.from_reply()``. One translation at each boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from libs.contracts.base import ContractModel


class ErrorKind(StrEnum):
    """Every error kind a user or a calling service can see (DOMAIN.md section 7).

    The last five are ours, not the domain's: MARKET_DATA_STALE and NO_CREDIT name
    no-trade outcomes of suggestion generation; INVALID_STATE is an action on something
    whose lifecycle no longer allows it (approving an expired suggestion);
    SERVICE_UNAVAILABLE is no answer from the owning service; INTERNAL_ERROR is a bug.
    """

    INSUFFICIENT_BUYING_POWER = "INSUFFICIENT_BUYING_POWER"
    STRIKE_NOT_FOUND = "STRIKE_NOT_FOUND"
    MARKET_CLOSED = "MARKET_CLOSED"
    API_ERROR = "API_ERROR"
    AUTH_FAILED = "AUTH_FAILED"
    TRADING_SUSPENDED = "TRADING_SUSPENDED"
    RISK_BUDGET_EXCEEDED = "RISK_BUDGET_EXCEEDED"
    CONFLICTING_POSITION = "CONFLICTING_POSITION"
    NO_EXPIRATION = "NO_EXPIRATION"
    POSITION_LIMIT = "POSITION_LIMIT"
    RISK_WARNING_UNCONFIRMED = "RISK_WARNING_UNCONFIRMED"
    RATE_LIMITED = "RATE_LIMITED"
    BROKER_UNAVAILABLE = "BROKER_UNAVAILABLE"
    BROKER_TIMEOUT = "BROKER_TIMEOUT"
    ORDER_REJECTED = "ORDER_REJECTED"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    MARKET_DATA_STALE = "MARKET_DATA_STALE"
    NO_CREDIT = "NO_CREDIT"
    INVALID_STATE = "INVALID_STATE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    @property
    def is_transient(self) -> bool:
        """Worth retrying with backoff (timeouts, 429, 5xx; DOMAIN.md 5)."""
        return self in _TRANSIENT


_TRANSIENT = frozenset({ErrorKind.API_ERROR, ErrorKind.RATE_LIMITED, ErrorKind.BROKER_TIMEOUT})


class ErrorReply(ContractModel):
    """The reply of any command that failed: a kind, a message a user can read."""

    type: Literal["ErrorReply"] = "ErrorReply"
    kind: ErrorKind
    message: str = Field(min_length=1)
    field: str | None = None
    """Dotted path of the offending input field, for VALIDATION_ERROR."""
    details: dict[str, str] = Field(default_factory=dict)
    """Machine-readable context (a broker's reason code, the id that was not found)."""


class SenexError(Exception):
    """Base of every typed error; carries an ``ErrorKind`` and a user-readable message."""

    #: The kind a subclass stands for; the base class defaults to INTERNAL_ERROR.
    KIND: ClassVar[ErrorKind] = ErrorKind.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | None = None,
        field: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind if kind is not None else self.KIND
        self.field = field
        self.details: dict[str, str] = dict(details or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind.value}: {self.message!r})"

    def to_reply(self) -> ErrorReply:
        """The wire form of this error."""
        return ErrorReply(
            kind=self.kind, message=self.message, field=self.field, details=self.details
        )

    @staticmethod
    def from_reply(reply: ErrorReply) -> SenexError:
        """The exception a caller raises for ``reply``: the subclass registered for its kind."""
        cls = _BY_KIND.get(reply.kind, SenexError)
        return cls(reply.message, kind=reply.kind, field=reply.field, details=reply.details)


# --- groups -------------------------------------------------------------------------


class NoTradeError(SenexError):
    """Suggestion generation found no acceptable trade; a reasoned "no suggestion"."""


class RiskError(SenexError):
    """The risk budget or the broker's buying power refuses the trade."""


class BrokerError(SenexError):
    """The broker failed, refused, or could not be reached."""


class TradingUnavailable(SenexError):
    """Trading is not possible right now (market closed, trading suspended)."""


# --- one class per kind ---------------------------------------------------------------


class StrikeNotFound(NoTradeError):
    """No candidate expiration lists the strikes with two-sided quotes (recoverable)."""

    KIND = ErrorKind.STRIKE_NOT_FOUND


class NoExpiration(NoTradeError):
    """No expiration lies within the DTE window."""

    KIND = ErrorKind.NO_EXPIRATION


class ConflictingPosition(NoTradeError):
    """A proposed strike overlaps an open spread's opposite leg."""

    KIND = ErrorKind.CONFLICTING_POSITION


class PositionLimitReached(NoTradeError):
    """The account already has the maximum number of open app-managed positions."""

    KIND = ErrorKind.POSITION_LIMIT


class MarketDataStaleError(NoTradeError):
    """A quote the decision needs is missing or too old."""

    KIND = ErrorKind.MARKET_DATA_STALE


class NoCredit(NoTradeError):
    """At the current quotes the trade would not collect a positive credit."""

    KIND = ErrorKind.NO_CREDIT


class RiskBudgetExceeded(RiskError):
    """The trade's max risk exceeds the remaining risk budget."""

    KIND = ErrorKind.RISK_BUDGET_EXCEEDED


class InsufficientBuyingPower(RiskError):
    """The broker's dry run says the account cannot afford the order."""

    KIND = ErrorKind.INSUFFICIENT_BUYING_POWER


class RiskWarningUnconfirmed(RiskError):
    """An approval above a utilisation warning level did not confirm the warning."""

    KIND = ErrorKind.RISK_WARNING_UNCONFIRMED


class ApiError(BrokerError):
    """A transient broker API failure (5xx, unexpected answer); retried with backoff."""

    KIND = ErrorKind.API_ERROR


class AuthFailed(BrokerError):
    """The broker refused the credentials, even after a session refresh."""

    KIND = ErrorKind.AUTH_FAILED


class RateLimited(BrokerError):
    """The broker answered 429."""

    KIND = ErrorKind.RATE_LIMITED


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached; trading is suspended, nothing is queued."""

    KIND = ErrorKind.BROKER_UNAVAILABLE


class BrokerTimeout(BrokerError):
    """The broker did not answer in time; the outcome of the request is unknown."""

    KIND = ErrorKind.BROKER_TIMEOUT


class OrderRejectedError(BrokerError):
    """The broker rejected the order; ``message`` carries the broker's reason."""

    KIND = ErrorKind.ORDER_REJECTED


class MarketClosed(TradingUnavailable):
    """Outside regular market hours."""

    KIND = ErrorKind.MARKET_CLOSED


class TradingSuspendedError(TradingUnavailable):
    """Trading is suspended for the account."""

    KIND = ErrorKind.TRADING_SUSPENDED


class ValidationFailed(SenexError):
    """Bad input; ``field`` names the offending field."""

    KIND = ErrorKind.VALIDATION_ERROR


class NotFound(SenexError):
    """The suggestion, order or position asked for does not exist (for this account)."""

    KIND = ErrorKind.NOT_FOUND


class InvalidState(SenexError):
    """The action is not allowed in the current lifecycle state."""

    KIND = ErrorKind.INVALID_STATE


class ServiceUnavailable(SenexError):
    """The service owning the command did not answer."""

    KIND = ErrorKind.SERVICE_UNAVAILABLE


class InternalError(SenexError):
    """An unexpected failure inside a service."""

    KIND = ErrorKind.INTERNAL_ERROR


# --- contract (wire) errors -------------------------------------------------------------


class ContractError(ValidationFailed):
    """A message does not conform to the contracts."""


class UnknownMessageType(ContractError):
    """The message's ``type`` names no registered event, command or reply."""

    def __init__(self, type_name: str, *, expected: str = "event") -> None:
        super().__init__(
            f"unknown {expected} type {type_name!r}",
            field="type",
            details={"type": type_name},
        )
        self.type_name = type_name


class InvalidPayload(ContractError):
    """The message is not valid for its type; ``field`` is the first offending field."""

    def __init__(
        self,
        message: str,
        *,
        type_name: str | None,
        field: str | None = None,
        errors: tuple[tuple[str, str], ...] = (),
    ) -> None:
        details = {path or "(root)": msg for path, msg in errors}
        if type_name is not None:
            details["type"] = type_name
        super().__init__(message, field=field, details=details)
        self.type_name = type_name
        #: Every ``(dotted field path, message)`` pydantic reported.
        self.errors = errors


class UnsupportedSchemaVersion(ContractError):
    """No upcaster path leads from the message's schema_version to the model's."""

    def __init__(self, type_name: str, version: int, current: int) -> None:
        super().__init__(
            f"{type_name}: cannot read schema_version {version} (current is {current})",
            field="schema_version",
            details={"type": type_name, "schema_version": str(version)},
        )
        self.type_name = type_name
        self.version = version
        self.current = current


_BY_KIND: dict[ErrorKind, type[SenexError]] = {
    cls.KIND: cls
    for cls in (
        StrikeNotFound,
        NoExpiration,
        ConflictingPosition,
        PositionLimitReached,
        MarketDataStaleError,
        NoCredit,
        RiskBudgetExceeded,
        InsufficientBuyingPower,
        RiskWarningUnconfirmed,
        ApiError,
        AuthFailed,
        RateLimited,
        BrokerUnavailable,
        BrokerTimeout,
        OrderRejectedError,
        MarketClosed,
        TradingSuspendedError,
        ValidationFailed,
        NotFound,
        InvalidState,
        ServiceUnavailable,
        InternalError,
    )
}

#: The exception class raised for each kind by ``SenexError.from_reply``.
ERROR_CLASSES: Mapping[ErrorKind, type[SenexError]] = _BY_KIND
