"""The shared vocabulary of Senex: events, commands, replies and their wire codec.

Import models from their context module (``libs.contracts.execution``...); the names
below are the ones nearly every service needs.
"""

from __future__ import annotations

from libs.contracts.base import ContractModel
from libs.contracts.commands import Command, Reply
from libs.contracts.envelope import ENVELOPE_FIELDS, AccountEvent, Event, MarketEvent
from libs.contracts.errors import (
    ErrorKind,
    ErrorReply,
    InvalidPayload,
    SenexError,
    UnknownMessageType,
    UnsupportedSchemaVersion,
    ValidationFailed,
)
from libs.contracts.registry import (
    COMMAND_TYPES,
    EVENT_TYPES,
    REPLY_TYPES,
    command_for,
    encode_command,
    encode_event,
    encode_reply,
    event_model,
    parse_command,
    parse_event,
    parse_reply,
)
from libs.contracts.subjects import event_subject, subject_for_command
from libs.contracts.symbols import OccSymbol, OptionType, format_occ, parse_occ
from libs.contracts.upcasting import register_upcaster

__all__ = [
    "COMMAND_TYPES",
    "ENVELOPE_FIELDS",
    "EVENT_TYPES",
    "REPLY_TYPES",
    "AccountEvent",
    "Command",
    "ContractModel",
    "ErrorKind",
    "ErrorReply",
    "Event",
    "InvalidPayload",
    "MarketEvent",
    "OccSymbol",
    "OptionType",
    "Reply",
    "SenexError",
    "UnknownMessageType",
    "UnsupportedSchemaVersion",
    "ValidationFailed",
    "command_for",
    "encode_command",
    "encode_event",
    "encode_reply",
    "event_model",
    "event_subject",
    "format_occ",
    "parse_command",
    "parse_event",
    "parse_occ",
    "parse_reply",
    "register_upcaster",
    "subject_for_command",
]
