"""The registry: every type findable by name, a fast exact codec, errors naming the field."""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import Literal
from uuid import UUID

import orjson
import pytest

from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    GetPositions,
    PositionListReply,
)
from libs.contracts.envelope import ENVELOPE_FIELDS, AccountEvent, Event, MarketEvent
from libs.contracts.errors import (
    ErrorKind,
    InvalidPayload,
    NotFound,
    UnknownMessageType,
    ValidationFailed,
)
from libs.contracts.market import QuoteReceived
from libs.contracts.registry import (
    COMMAND_TYPES,
    EVENT_TYPES,
    REPLY_TYPES,
    Registry,
    command_for,
    encode_event,
    encode_reply,
    event_model,
    parse_command,
    parse_event,
    parse_reply,
)
from libs.contracts.system import TradingResumed
from tests.unit.contracts.examples import ACCOUNT, NOW, envelope, opening_fill

#: The events ARCHITECTURE.md requires, plus the ones DOMAIN.md made us add.
REQUIRED_EVENTS = {
    "QuoteReceived", "MarketConditionChanged", "MarketDataStale", "MarketDataRecovered",
    "SuggestionGenerated", "SuggestionSkipped", "SuggestionApproved", "SuggestionRejected",
    "SuggestionExpired", "RiskCheckPassed", "RiskCheckFailed", "RiskReserved",
    "RiskReservationFailed", "RiskReleased", "OrderSubmitted", "OrderAccepted", "OrderFilled",
    "OrderPartiallyFilled", "OrderRejected", "OrderCancelled", "OrderExpired", "OrderReplaced",
    "PositionOpened", "ExitOrderPlaced", "PositionUpdated", "SpreadClosed", "PositionClosed",
    "PositionNeedsAttention", "BalanceUpdated", "TradingSuspended", "TradingResumed",
    "NotificationRequested", "AccountLinked", "AccountSettingsChanged",
}  # fmt: skip


def test_every_required_event_is_registered():
    assert {event.__name__ for event in EVENT_TYPES} >= REQUIRED_EVENTS


@pytest.mark.parametrize(
    "model", EVENT_TYPES + COMMAND_TYPES + REPLY_TYPES, ids=lambda m: m.__name__
)
def test_every_message_type_is_its_class_name(model):
    assert typing.get_args(model.model_fields["type"].annotation) == (model.__name__,)
    assert model.model_fields["type"].default == model.__name__


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda m: m.__name__)
def test_every_event_is_an_account_or_a_market_event_of_a_named_context(event_type):
    assert issubclass(event_type, AccountEvent) != issubclass(event_type, MarketEvent)
    assert event_type.CONTEXT in {
        "market", "strategy", "risk", "execution", "positions", "account", "system",
    }  # fmt: skip
    assert issubclass(event_type, MarketEvent) == event_type.MARKET_WIDE


def test_event_model_finds_a_class_by_type():
    assert event_model("QuoteReceived") is QuoteReceived


def test_encoded_event_is_one_flat_object_with_the_envelope_beside_the_payload():
    event = opening_fill()

    wire = orjson.loads(encode_event(event))

    assert wire.keys() >= ENVELOPE_FIELDS
    assert wire["type"] == "OrderFilled"
    assert wire["legs"][0]["symbol"] == "QQQ   251219P00592000"
    assert set(event.payload()) == wire.keys() - ENVELOPE_FIELDS


@pytest.mark.parametrize("price", ["1.10", "0.005", "1E+2", "-0.00", "123456789.123456789"])
def test_decimals_are_encoded_as_their_exact_string(price):
    wire = orjson.loads(encode_event(opening_fill(price)))

    assert wire["legs"][0]["fill_price"] == price


def test_a_bad_field_is_named_in_the_error_with_its_path():
    wire = encode_event(opening_fill()).replace(b'"1.10"', b'"one dollar ten"')

    with pytest.raises(InvalidPayload) as caught:
        parse_event(wire)

    assert str(caught.value) == "OrderFilled.legs.0.fill_price: Input should be a valid decimal"
    assert caught.value.field == "legs.0.fill_price"
    assert caught.value.kind is ErrorKind.VALIDATION_ERROR
    assert caught.value.type_name == "OrderFilled"


def test_a_missing_field_is_named_in_the_error():
    data = orjson.loads(encode_event(opening_fill()))
    del data["broker_order_id"]

    with pytest.raises(InvalidPayload, match=r"^OrderFilled\.broker_order_id: Field required$"):
        parse_event(orjson.dumps(data))


def test_an_extra_field_is_refused_rather_than_dropped():
    data = orjson.loads(encode_event(opening_fill()))
    data["fill_prise"] = "1.10"

    with pytest.raises(InvalidPayload, match=r"^OrderFilled\.fill_prise: Extra inputs"):
        parse_event(data)


def test_several_bad_fields_are_all_reported():
    data = orjson.loads(encode_event(opening_fill()))
    data["broker_order_id"] = ""
    data["order_id"] = "not-a-uuid"

    with pytest.raises(InvalidPayload) as caught:
        parse_event(data)

    assert str(caught.value).endswith("(and 1 more)")
    assert {path for path, _ in caught.value.errors} == {"order_id", "broker_order_id"}


def test_an_unknown_type_is_a_typed_error_naming_the_type():
    data = orjson.loads(encode_event(opening_fill()))
    data["type"] = "OrderTeleported"

    with pytest.raises(UnknownMessageType, match="unknown event type 'OrderTeleported'") as caught:
        parse_event(data)

    assert caught.value.type_name == "OrderTeleported"
    assert caught.value.field == "type"


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"{not json", "event is not valid JSON"),
        (b"[1, 2]", "event must be a JSON object, got list"),
        (b'{"producer": "x"}', "event has no 'type' naming its model"),
    ],
)
def test_malformed_messages_are_typed_errors(wire, message):
    with pytest.raises(InvalidPayload, match=message):
        parse_event(wire)


def test_every_contract_error_is_a_validation_error_for_callers():
    assert issubclass(InvalidPayload, ValidationFailed)
    assert issubclass(UnknownMessageType, ValidationFailed)


def test_a_market_wide_event_refuses_an_account():
    quote = QuoteReceived(
        **envelope(account=None), symbol="QQQ", bid=Decimal(1), ask=Decimal(2), quoted_at=NOW
    )
    data = orjson.loads(encode_event(quote))
    data["account_id"] = ACCOUNT

    with pytest.raises(InvalidPayload, match=r"QuoteReceived\.account_id: .*market-wide"):
        parse_event(data)


def test_an_account_event_requires_an_account():
    data = orjson.loads(encode_event(TradingResumed(**envelope(), message="broker back")))
    data["account_id"] = None

    with pytest.raises(InvalidPayload, match=r"^TradingResumed\.account_id: "):
        parse_event(data)


def test_parse_does_not_change_the_callers_mapping():
    data = orjson.loads(encode_event(opening_fill()))
    snapshot = orjson.dumps(data)

    parse_event(data)

    assert orjson.dumps(data) == snapshot


def test_encode_refuses_an_event_class_that_is_not_registered():
    class Unregistered(AccountEvent):
        CONTEXT = "system"
        type: Literal["Unregistered"] = "Unregistered"

    with pytest.raises(UnknownMessageType):
        encode_event(Unregistered(**envelope()))


def test_a_registry_refuses_a_model_whose_type_is_not_its_class_name():
    class Misnamed(AccountEvent):
        type: Literal["SomethingElse"] = "SomethingElse"

    with pytest.raises(TypeError, match='Misnamed must declare type: Literal\\["Misnamed"\\]'):
        Registry("event", [Misnamed])


def test_a_registry_refuses_one_type_twice():
    with pytest.raises(TypeError, match="registered twice"):
        Registry("event", [TradingResumed, TradingResumed])


def test_commands_are_found_by_service_and_verb():
    assert command_for("strategy", "approve_suggestion") is ApproveSuggestion
    with pytest.raises(UnknownMessageType):
        command_for("strategy", "launch_rocket")


def test_every_command_route_is_unique():
    routes = [(command.SERVICE, command.VERB) for command in COMMAND_TYPES]
    assert len(routes) == len(set(routes))
    assert all(command.SERVICE and command.VERB for command in COMMAND_TYPES)


def test_a_command_parses_back_to_its_model():
    command = ApproveSuggestion(
        account_id=ACCOUNT,
        suggestion_id=UUID(int=1),
        custom_credit=Decimal("2.35"),
        confirm_warning=True,
    )

    assert parse_command(command.model_dump_json()) == command


def test_an_error_reply_is_raised_as_its_typed_exception():
    wire = encode_reply(NotFound("no position 42", details={"position_id": "42"}).to_reply())

    with pytest.raises(NotFound, match="no position 42") as caught:
        parse_reply(wire, PositionListReply)

    assert caught.value.details == {"position_id": "42"}


def test_a_reply_of_another_type_is_refused():
    wire = encode_reply(PositionListReply(positions=()))

    with pytest.raises(InvalidPayload, match="expected a ApprovalReply"):
        parse_reply(wire, ApprovalReply)


def test_every_command_names_a_registered_reply():
    assert {command.REPLY for command in COMMAND_TYPES} <= set(REPLY_TYPES)
    assert GetPositions.REPLY is PositionListReply


def test_event_base_classes_are_not_registered():
    registered = set(EVENT_TYPES)
    assert not {Event, AccountEvent, MarketEvent} & registered
