"""The WebSocket's messages: what a client may send, and what the server pushes.

Every frame is one JSON object with a ``type``. Client messages may carry ``id`` (a
string of the client's choosing); errors about that message, and events caused by the
command it started, echo it as ``request_id``.

Client -> server: ``subscribe_quotes`` / ``unsubscribe_quotes`` (``symbols``: tickers or
21-character OCC symbols), ``generate_suggestion`` (``symbol``), ``execute_order``
(``suggestion_id``, ``custom_credit``?, ``confirm_warning``?), ``ping``.

Server -> client: ``subscribed`` (the symbols now subscribed), ``quote_update``,
``suggestion_update``, ``order.status``, ``position_update``, ``balance_update``,
``notification``, ``error`` (``kind``, ``message``, ``field``, ``details``), ``pong``.

Pure: parsing never raises anything but `ProtocolError`, and the mapping from events to
messages is a function of the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from libs.contracts.account import BalanceUpdated
from libs.contracts.base import AccountId, PositiveMoney, Underlying
from libs.contracts.envelope import Event
from libs.contracts.errors import ErrorKind, SenexError
from libs.contracts.market import QuoteReceived
from libs.contracts.positions import (
    ExitOrderPlaced,
    PositionAttentionCleared,
    PositionClosed,
    PositionNeedsAttention,
    PositionOpened,
    PositionUpdated,
    SpreadClosed,
)
from libs.contracts.risk import RiskCheckFailed, RiskCheckPassed
from libs.contracts.strategy import (
    SuggestionApproved,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionSkipped,
)
from libs.contracts.symbols import MarketSymbol
from libs.contracts.system import NotificationRequested, TradingResumed, TradingSuspended
from libs.domain.lifecycle import status_of

#: Symbols one subscribe/unsubscribe message may name.
MAX_SYMBOLS_PER_MESSAGE = 100
#: A client frame larger than this is answered with an error instead of being parsed.
MAX_FRAME_BYTES = 16 * 1024

# --- close codes (4000-4999 are the application's own, RFC 6455 7.4.2) ---------------
CLOSE_NOT_AUTHENTICATED = 4401
"""No live session at the handshake, or it ended (logout, expiry) while connected."""
CLOSE_ORIGIN_REFUSED = 4403
"""The handshake's Origin is not the gateway's own (cross-site WebSocket hijacking)."""
CLOSE_TOO_SLOW = 4008
"""The client read too slowly: its queue of non-quote messages overflowed."""
CLOSE_GOING_AWAY = 1001
"""The gateway is shutting down."""
CLOSE_INTERNAL = 1011


class ProtocolError(SenexError):
    """A client message the gateway cannot act on; answered with an ``error`` message."""

    KIND = ErrorKind.VALIDATION_ERROR

    def __init__(self, message: str, *, field: str | None = None, request_id: str | None = None):
        super().__init__(message, field=field)
        self.request_id = request_id


def _upper(value: object) -> object:
    # Tickers are case-insensitive for a user; the contracts hold them upper-case.
    return value.upper() if isinstance(value, str) else value


WsSymbol = Annotated[MarketSymbol, BeforeValidator(_upper)]
RequestId = Annotated[str, Field(min_length=1, max_length=64)]


class ClientMessage(BaseModel):
    """Base of client messages: unknown fields are refused, ``id`` is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RequestId | None = None


class SubscribeQuotes(ClientMessage):
    type: Literal["subscribe_quotes"]
    symbols: tuple[WsSymbol, ...] = Field(min_length=1, max_length=MAX_SYMBOLS_PER_MESSAGE)


class UnsubscribeQuotes(ClientMessage):
    type: Literal["unsubscribe_quotes"]
    symbols: tuple[WsSymbol, ...] = Field(min_length=1, max_length=MAX_SYMBOLS_PER_MESSAGE)


class GenerateSuggestionMessage(ClientMessage):
    type: Literal["generate_suggestion"]
    symbol: Annotated[Underlying, BeforeValidator(_upper)]
    strategy: Literal["senex_trident"] = "senex_trident"
    account: AccountId | None = None
    """Needed only by a user with several accounts."""


class ExecuteOrder(ClientMessage):
    type: Literal["execute_order"]
    suggestion_id: UUID
    custom_credit: PositiveMoney | None = None
    confirm_warning: bool = False
    account: AccountId | None = None


class Ping(ClientMessage):
    type: Literal["ping"]


Incoming = Annotated[
    SubscribeQuotes | UnsubscribeQuotes | GenerateSuggestionMessage | ExecuteOrder | Ping,
    Field(discriminator="type"),
]
_INCOMING: TypeAdapter[Incoming] = TypeAdapter(Incoming)
CLIENT_TYPES = (
    "subscribe_quotes",
    "unsubscribe_quotes",
    "generate_suggestion",
    "execute_order",
    "ping",
)


def parse_client_message(frame: str | bytes) -> Incoming:
    """The message in ``frame``; `ProtocolError` naming what is wrong otherwise."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(f"message larger than {MAX_FRAME_BYTES} bytes")
    try:
        raw = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise ProtocolError("the message is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ProtocolError('the message must be a JSON object with a "type"')
    given_id = raw.get("id")
    request_id = given_id if isinstance(given_id, str) and 0 < len(given_id) <= 64 else None
    kind = raw.get("type")
    if kind not in CLIENT_TYPES:
        raise ProtocolError(
            f"type: one of {', '.join(CLIENT_TYPES)}", field="type", request_id=request_id
        )
    try:
        return _INCOMING.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        # The discriminator is the first location part; the field is what follows it.
        loc = [str(part) for part in first["loc"][1:]] or ["message"]
        field = ".".join(loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ProtocolError(
            f"{field}: {first['msg']}{more}", field=field, request_id=request_id
        ) from None


# --- server messages -------------------------------------------------------------------


def dumps(message: dict[str, Any]) -> str:
    """One frame's text."""
    return orjson.dumps(message, default=_default).decode()


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def error_message(
    kind: ErrorKind,
    message: str,
    *,
    field: str | None = None,
    details: dict[str, str] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """An ``error`` message (the REST error body's fields, plus ``request_id``)."""
    out: dict[str, Any] = {
        "type": "error",
        "kind": kind.value,
        "message": message,
        "field": field,
        "details": details or {},
    }
    if request_id is not None:
        out["request_id"] = request_id
    return out


def error_of(exc: SenexError, request_id: str | None = None) -> dict[str, Any]:
    """The ``error`` message for a typed error."""
    return error_message(
        exc.kind, exc.message, field=exc.field, details=dict(exc.details), request_id=request_id
    )


@dataclass(frozen=True, slots=True)
class QuoteTexts:
    """A quote's two frames: sent at once, or held to its throttle window's end."""

    at_once: str
    held: str


def quote_update(event: QuoteReceived) -> QuoteTexts:
    """``quote_update``: bid, ask, mid, sizes, ``quoted_at`` and ``timestamp`` (ms)."""
    body = dumps(
        {
            "type": "quote_update",
            "symbol": event.symbol,
            "bid": event.bid,
            "ask": event.ask,
            "mid": event.mid,
            "bid_size": event.bid_size,
            "ask_size": event.ask_size,
            "quoted_at": event.quoted_at.isoformat(),
            "timestamp": int(event.quoted_at.timestamp() * 1000),
        }
    )
    # ``held`` tells the two apart: true when the quote waited for its window's end.
    return QuoteTexts(at_once=body[:-1] + ',"held":false}', held=body[:-1] + ',"held":true}')


class Push:
    """Kinds of pushed messages and their throttle class."""

    SUGGESTION = "suggestion_update"
    ORDER = "order.status"
    POSITION = "position_update"
    BALANCE = "balance_update"
    NOTIFICATION = "notification"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An account event as a message, and how it is throttled."""

    message: dict[str, Any]
    throttle: Literal["position", "balance"] | None = None
    """None: sent at once; otherwise latest wins per `key` within that throttle's window."""
    key: str | None = None


_SUGGESTION_STATUS: dict[type[Event], str] = {
    SuggestionGenerated: "PENDING",
    SuggestionSkipped: "SKIPPED",
    SuggestionApproved: "APPROVED",
    SuggestionRejected: "REJECTED",
    SuggestionExpired: "EXPIRED",
}
_POSITION_EVENTS: tuple[type[Event], ...] = (
    PositionOpened,
    ExitOrderPlaced,
    SpreadClosed,
    PositionClosed,
    PositionNeedsAttention,
    PositionAttentionCleared,
)
_NOTIFICATIONS: tuple[type[Event], ...] = (
    NotificationRequested,
    TradingSuspended,
    TradingResumed,
)


def _base(kind: str, event: Event) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": kind,
        "event": event.type,
        "event_id": str(event.event_id),
        "account_id": event.account_id,
        "occurred_at": event.occurred_at.isoformat(),
    }
    message.update(event.payload())
    return message


def outgoing(event: Event) -> Outgoing | None:
    """The message pushing ``event`` to its account's user; None for events not pushed.

    Payload fields come as the event carries them (money as decimal strings), beside
    ``type``, ``event`` (the event type), ``event_id``, ``account_id``, ``occurred_at``.
    Position valuations and balances are full states, so a newer one may replace an
    older one unsent; lifecycle events (opened, closed, fills...) are never dropped.
    """
    cls = type(event)
    if cls in _SUGGESTION_STATUS:
        message = _base(Push.SUGGESTION, event)
        message["status"] = _SUGGESTION_STATUS[cls]
        if isinstance(event, SuggestionGenerated):
            message["suggestion_id"] = str(event.suggestion.suggestion_id)
        return Outgoing(message)
    if isinstance(event, RiskCheckPassed | RiskCheckFailed):
        message = _base(Push.SUGGESTION, event)
        message["status"] = "PENDING"
        message["risk_check_passed"] = isinstance(event, RiskCheckPassed)
        return Outgoing(message)
    order_status = status_of(event)
    if order_status is not None:
        message = _base(Push.ORDER, event)
        message["status"] = order_status.value
        return Outgoing(message)
    if isinstance(event, PositionUpdated):
        message = _base(Push.POSITION, event)
        return Outgoing(message, throttle="position", key=str(event.position_id))
    if isinstance(event, _POSITION_EVENTS):
        return Outgoing(_base(Push.POSITION, event))
    if isinstance(event, BalanceUpdated):
        message = _base(Push.BALANCE, event)
        # The names the workflow spec's screen reads, beside the broker's own.
        message["balance"] = message["net_liquidating_value"]
        message["buying_power"] = message["derivative_buying_power"]
        return Outgoing(message, throttle="balance", key=event.account_id)
    if isinstance(event, _NOTIFICATIONS):
        return Outgoing(_base(Push.NOTIFICATION, event))
    return None
