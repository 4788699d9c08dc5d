"""Every message survives its wire form unchanged, for every registered type."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.contracts.errors import ErrorReply
from libs.contracts.registry import (
    COMMAND_TYPES,
    EVENT_TYPES,
    REPLY_TYPES,
    encode_command,
    encode_event,
    encode_reply,
    parse_command,
    parse_event,
    parse_reply,
)
from tests.unit.contracts.strategies import models


def _name(model: type) -> str:
    return model.__name__


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=_name)
@given(data=st.data())
def test_every_event_round_trips_through_json_unchanged(event_type, data):
    event = data.draw(models(event_type))

    wire = encode_event(event)
    parsed = parse_event(wire)

    assert type(parsed) is event_type
    assert parsed == event
    assert encode_event(parsed) == wire, "re-encoding must give the same bytes"
    assert parse_event(wire.decode()) == event, "JSON text parses the same"
    assert parse_event(orjson.loads(wire)) == event, "a decoded mapping parses the same"


@pytest.mark.parametrize("command_type", COMMAND_TYPES, ids=_name)
@given(data=st.data())
def test_every_command_round_trips_through_json_unchanged(command_type, data):
    command = data.draw(models(command_type))

    wire = encode_command(command)

    assert parse_command(wire) == command
    assert encode_command(parse_command(wire)) == wire


@pytest.mark.parametrize("reply_type", [r for r in REPLY_TYPES if r is not ErrorReply], ids=_name)
# Replies nest the views whose parts the event tests already cover; fewer examples suffice.
@settings(max_examples=30)
@given(data=st.data())
def test_every_reply_round_trips_through_json_unchanged(reply_type, data):
    reply = data.draw(models(reply_type))

    wire = encode_reply(reply)

    assert parse_reply(wire, reply_type) == reply
    assert encode_reply(parse_reply(wire, reply_type)) == wire
