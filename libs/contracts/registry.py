"""Every event, command and reply by ``type``, with their wire codec.

``parse_event`` is on the hot path of every consumer. JSON input goes through one
discriminated union built once (pydantic-core finds the model by ``type`` and validates
in one pass); only when that fails, or the message is of an older schema version, does
the slower path decode, upcast and explain the error naming the field.
``encode_event`` uses pydantic's compiled serializer, which writes Decimals as their
exact strings (``Decimal("1.10")`` -> ``"1.10"``).
"""

from __future__ import annotations

import copy
import functools
import operator
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from libs.contracts.account import AccountLinked, AccountSettingsChanged, BalanceUpdated
from libs.contracts.base import ContractModel
from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    CancelOrder,
    ChainSnapshotReply,
    ClosePosition,
    ClosePositionReply,
    Command,
    DecisionSnapshotReply,
    EventPageReply,
    GenerateSuggestion,
    GetCausalChain,
    GetChainSnapshot,
    GetDecisionSnapshot,
    GetEvents,
    GetMarketCondition,
    GetOrder,
    GetOrders,
    GetPosition,
    GetPositions,
    GetQuotes,
    GetRiskBudget,
    GetSuggestion,
    GetSuggestions,
    MarketConditionReply,
    OrderListReply,
    OrderReply,
    PlaceExitOrder,
    PositionListReply,
    PositionReply,
    QuotesReply,
    RejectSuggestion,
    ReplaceOrderPrice,
    RiskBudgetReply,
    SuggestionListReply,
    SuggestionReply,
    SyncPositions,
    SyncPositionsReply,
    VerifyEventLog,
    VerifyReply,
    WatchReply,
    WatchSymbols,
)
from libs.contracts.envelope import Event
from libs.contracts.errors import (
    ErrorReply,
    InvalidPayload,
    SenexError,
    UnknownMessageType,
)
from libs.contracts.execution import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    OrderSubmitted,
)
from libs.contracts.market import (
    MarketConditionChanged,
    MarketDataRecovered,
    MarketDataStale,
    QuoteReceived,
)
from libs.contracts.positions import (
    ExitOrderPlaced,
    PositionAttentionCleared,
    PositionClosed,
    PositionNeedsAttention,
    PositionOpened,
    PositionUpdated,
    SpreadClosed,
)
from libs.contracts.risk import (
    RiskCheckFailed,
    RiskCheckPassed,
    RiskReleased,
    RiskReservationFailed,
    RiskReserved,
)
from libs.contracts.strategy import (
    SuggestionApproved,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionSkipped,
)
from libs.contracts.system import NotificationRequested, TradingResumed, TradingSuspended
from libs.contracts.upcasting import UPCASTERS, Upcasters

M = TypeVar("M", bound=ContractModel)
R = TypeVar("R", bound=ContractModel)

#: What ``parse`` accepts: JSON bytes or text, or an already decoded object.
RawMessage = bytes | bytearray | memoryview | str | Mapping[str, Any]

#: Every event type, grouped by context.
EVENT_TYPES: tuple[type[Event], ...] = (
    # market
    QuoteReceived,
    MarketConditionChanged,
    MarketDataStale,
    MarketDataRecovered,
    # strategy
    SuggestionGenerated,
    SuggestionSkipped,
    SuggestionApproved,
    SuggestionRejected,
    SuggestionExpired,
    # risk
    RiskCheckPassed,
    RiskCheckFailed,
    RiskReserved,
    RiskReservationFailed,
    RiskReleased,
    # execution
    OrderSubmitted,
    OrderAccepted,
    OrderPartiallyFilled,
    OrderFilled,
    OrderRejected,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    # positions
    PositionOpened,
    ExitOrderPlaced,
    PositionUpdated,
    SpreadClosed,
    PositionClosed,
    PositionNeedsAttention,
    PositionAttentionCleared,
    # account
    AccountLinked,
    AccountSettingsChanged,
    BalanceUpdated,
    # system
    TradingSuspended,
    TradingResumed,
    NotificationRequested,
)

#: Every command and query.
COMMAND_TYPES: tuple[type[Command], ...] = (
    GenerateSuggestion,
    GetSuggestion,
    GetSuggestions,
    ApproveSuggestion,
    RejectSuggestion,
    GetRiskBudget,
    GetOrder,
    GetOrders,
    CancelOrder,
    PlaceExitOrder,
    ReplaceOrderPrice,
    GetPosition,
    GetPositions,
    ClosePosition,
    SyncPositions,
    GetQuotes,
    WatchSymbols,
    GetChainSnapshot,
    GetMarketCondition,
    GetDecisionSnapshot,
    GetEvents,
    GetCausalChain,
    VerifyEventLog,
)

#: Every reply, ``ErrorReply`` included.
REPLY_TYPES: tuple[type[ContractModel], ...] = (
    SuggestionReply,
    SuggestionListReply,
    ApprovalReply,
    RiskBudgetReply,
    OrderReply,
    OrderListReply,
    PositionReply,
    PositionListReply,
    ClosePositionReply,
    SyncPositionsReply,
    QuotesReply,
    WatchReply,
    ChainSnapshotReply,
    MarketConditionReply,
    DecisionSnapshotReply,
    EventPageReply,
    VerifyReply,
    ErrorReply,
)


def _type_literal(model: type[ContractModel]) -> str:
    """The single value of ``model``'s ``type: Literal[...]`` field; it must be its name."""
    field = model.model_fields.get("type")
    args = typing.get_args(field.annotation) if field is not None else ()
    if (
        field is None
        or typing.get_origin(field.annotation) is not typing.Literal
        or args != (model.__name__,)
        or field.default != model.__name__
    ):
        raise TypeError(
            f'{model.__name__} must declare type: Literal["{model.__name__}"] = "{model.__name__}"'
        )
    return model.__name__


def _union_adapter(models: tuple[type[M], ...]) -> TypeAdapter[M]:
    """One validator for all ``models``, dispatching on ``type`` (a tagged union)."""
    if len(models) == 1:
        return TypeAdapter(models[0])
    union = functools.reduce(operator.or_, models)
    # Annotated is subscripted at run time with a computed union; typed through Any
    # because the union is not a static type.
    annotated: Any = Annotated
    adapter: TypeAdapter[M] = TypeAdapter(annotated[union, Field(discriminator="type")])
    return adapter


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def invalid_payload(type_name: str, error: ValidationError) -> InvalidPayload:
    """A typed error naming ``type_name`` and the first offending field."""
    found = [(_path(e["loc"]), e["msg"]) for e in error.errors(include_url=False)]
    # An error on a container that only follows from an error inside it ("legs" too
    # short once "legs.0" failed) is noise: keep the inner one.
    errors = tuple(
        (path, msg)
        for path, msg in found
        if not any(other != path and other.startswith(f"{path}.") for other, _ in found)
    ) or tuple(found)
    path, msg = errors[0]
    message = f"{type_name}.{path}: {msg}" if path else f"{type_name}: {msg}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return InvalidPayload(message, type_name=type_name, field=path or None, errors=errors)


class Registry(Generic[M]):
    """Models of one kind (event, command or reply) by ``type``, with their codec."""

    def __init__(
        self, kind: str, models: Iterable[type[M]], upcasters: Upcasters | None = None
    ) -> None:
        self.kind = kind
        self._upcasters = upcasters
        self._models: dict[str, type[M]] = {}
        self._versions: dict[str, int] = {}
        for model in models:
            name = _type_literal(model)
            if name in self._models:
                raise TypeError(f"{kind} type {name} registered twice")
            self._models[name] = model
            version_field = model.model_fields.get("schema_version")
            if version_field is not None and isinstance(version_field.default, int):
                self._versions[name] = version_field.default
        self._adapter = _union_adapter(tuple(self._models.values()))

    @property
    def types(self) -> Mapping[str, type[M]]:
        """Model by type name."""
        return self._models

    def model_for(self, type_name: str) -> type[M]:
        """The model for ``type_name``; raises ``UnknownMessageType``."""
        model = self._models.get(type_name)
        if model is None:
            raise UnknownMessageType(type_name, expected=self.kind)
        return model

    def decode(self, data: RawMessage) -> dict[str, Any]:
        """The message as a dict (no validation beyond being a JSON object)."""
        if isinstance(data, Mapping):
            # Not copied: validation only reads it, and upcasting works on a deep copy.
            return data if isinstance(data, dict) else dict(data)
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidPayload(f"{self.kind} is not valid JSON: {exc}", type_name=None) from None
        if not isinstance(obj, dict):
            raise InvalidPayload(
                f"{self.kind} must be a JSON object, got {type(obj).__name__}", type_name=None
            )
        return obj

    def parse(self, data: RawMessage) -> M:
        """Validate a message into its model, upcasting old schema versions first.

        Raises ``UnknownMessageType``, ``InvalidPayload`` (naming the field) or
        ``UnsupportedSchemaVersion``, all ``ValidationFailed``.
        """
        if not isinstance(data, Mapping):
            raw = data if isinstance(data, bytes | bytearray | str) else bytes(data)
            try:
                message = self._adapter.validate_json(raw)
            except ValidationError:
                pass  # the path below tells an unknown type, an old version, a bad field
            else:
                current = self._versions.get(getattr(message, "type", ""))
                if current is None or getattr(message, "schema_version", current) == current:
                    return message
        obj = self.decode(data)
        type_name = obj.get("type")
        if not isinstance(type_name, str):
            raise InvalidPayload(
                f"{self.kind} has no 'type' naming its model", type_name=None, field="type"
            )
        model = self.model_for(type_name)
        return self._validate(model, type_name, obj, copied=not isinstance(data, Mapping))

    def parse_as(self, model: type[R], data: RawMessage) -> R:
        """Validate a message that must be of ``model`` (after upcasting)."""
        obj = self.decode(data)
        type_name = model.__name__
        if obj.get("type") != type_name:
            raise InvalidPayload(
                f"expected a {type_name}, got type {obj.get('type')!r}",
                type_name=type_name,
                field="type",
            )
        return self._validate(model, type_name, obj, copied=not isinstance(data, Mapping))

    def _validate(self, model: type[R], type_name: str, obj: dict[str, Any], *, copied: bool) -> R:
        current = self._versions.get(type_name)
        version = obj.get("schema_version", current)
        if current is not None and type(version) is int and version != current:
            if self._upcasters is None:
                raise InvalidPayload(
                    f"{type_name}.schema_version: {version} is not the current {current}",
                    type_name=type_name,
                    field="schema_version",
                )
            # Upcasters may change nested values: never let them touch the caller's data.
            obj = self._upcasters.upcast(
                type_name, obj if copied else copy.deepcopy(obj), version, current
            )
        try:
            return model.model_validate(obj)
        except ValidationError as exc:
            raise invalid_payload(type_name, exc) from None

    def encode(self, message: M) -> bytes:
        """The message as compact JSON bytes; refuses an unregistered model."""
        type_name = getattr(message, "type", None)
        if not isinstance(type_name, str) or self._models.get(type_name) is not type(message):
            raise UnknownMessageType(str(type_name or type(message).__name__), expected=self.kind)
        return message.__pydantic_serializer__.to_json(message)


#: Events by type, reading old versions through ``UPCASTERS``.
EVENTS: Registry[Event] = Registry("event", EVENT_TYPES, UPCASTERS)
#: Commands by type.
COMMANDS: Registry[Command] = Registry("command", COMMAND_TYPES, UPCASTERS)
#: Replies by type.
REPLIES: Registry[ContractModel] = Registry("reply", REPLY_TYPES)

_COMMANDS_BY_ROUTE: dict[tuple[str, str], type[Command]] = {
    (command.SERVICE, command.VERB): command for command in COMMAND_TYPES
}


def parse_event(data: RawMessage) -> Event:
    """The event in ``data`` (JSON bytes/text or a decoded mapping)."""
    return EVENTS.parse(data)


def encode_event(event: Event) -> bytes:
    """``event`` as one flat JSON object (UTF-8 bytes), Decimals as exact strings."""
    return EVENTS.encode(event)


def event_model(type_name: str) -> type[Event]:
    """The event class for ``type_name``; raises ``UnknownMessageType``."""
    return EVENTS.model_for(type_name)


def parse_command(data: RawMessage) -> Command:
    """The command in ``data``."""
    return COMMANDS.parse(data)


def encode_command(command: Command) -> bytes:
    """``command`` as JSON bytes."""
    return COMMANDS.encode(command)


def command_for(service: str, verb: str) -> type[Command]:
    """The command a service answers on ``verb``; raises ``UnknownMessageType``."""
    command = _COMMANDS_BY_ROUTE.get((service, verb))
    if command is None:
        raise UnknownMessageType(f"{service}.{verb}", expected="command")
    return command


def encode_reply(reply: ContractModel) -> bytes:
    """A reply (or ``ErrorReply``) as JSON bytes."""
    return REPLIES.encode(reply)


def parse_reply(data: RawMessage, expected: type[R]) -> R:
    """The ``expected`` reply in ``data``; an ``ErrorReply`` is raised as its ``SenexError``."""
    obj = REPLIES.decode(data)
    if obj.get("type") == ErrorReply.__name__:
        raise SenexError.from_reply(REPLIES.parse_as(ErrorReply, obj))
    return REPLIES.parse_as(expected, obj)
