"""Typed errors: every kind has an exception, and errors cross the wire unchanged."""

from __future__ import annotations

import pytest

from libs.contracts.commands import ApprovalReply
from libs.contracts.errors import (
    ERROR_CLASSES,
    BrokerError,
    BrokerTimeout,
    ErrorKind,
    ErrorReply,
    InvalidPayload,
    NoTradeError,
    OrderRejectedError,
    RiskError,
    RiskWarningUnconfirmed,
    SenexError,
    StrikeNotFound,
    ValidationFailed,
)
from libs.contracts.registry import encode_reply, parse_reply
from libs.contracts.strategy import SkipReason

#: DOMAIN.md section 7, verbatim.
DOMAIN_KINDS = {
    "INSUFFICIENT_BUYING_POWER", "STRIKE_NOT_FOUND", "MARKET_CLOSED", "API_ERROR",
    "AUTH_FAILED", "TRADING_SUSPENDED", "RISK_BUDGET_EXCEEDED", "CONFLICTING_POSITION",
    "NO_EXPIRATION", "POSITION_LIMIT", "RISK_WARNING_UNCONFIRMED", "RATE_LIMITED",
    "BROKER_UNAVAILABLE", "BROKER_TIMEOUT", "ORDER_REJECTED", "VALIDATION_ERROR", "NOT_FOUND",
}  # fmt: skip


def test_every_domain_error_kind_exists():
    assert {kind.value for kind in ErrorKind} >= DOMAIN_KINDS


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_has_its_own_exception_class(kind):
    cls = ERROR_CLASSES[kind]

    assert cls.KIND is kind
    assert cls("boom").kind is kind


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_an_error_survives_the_wire_as_the_same_class(kind):
    error = ERROR_CLASSES[kind]("it went wrong", field="custom_credit", details={"code": "x1"})

    with pytest.raises(ERROR_CLASSES[kind]) as caught:
        parse_reply(encode_reply(error.to_reply()), ApprovalReply)

    assert (caught.value.kind, caught.value.message) == (kind, "it went wrong")
    assert (caught.value.field, caught.value.details) == ("custom_credit", {"code": "x1"})


def test_errors_are_grouped_by_who_refused():
    assert issubclass(StrikeNotFound, NoTradeError)
    assert issubclass(RiskWarningUnconfirmed, RiskError)
    assert issubclass(OrderRejectedError, BrokerError)
    assert all(issubclass(cls, SenexError) for cls in ERROR_CLASSES.values())


def test_a_contract_error_reaches_a_caller_as_a_validation_error():
    error = InvalidPayload("OrderFilled.legs: bad", type_name="OrderFilled", field="legs")

    restored = SenexError.from_reply(error.to_reply())

    assert type(restored) is ValidationFailed
    assert restored.field == "legs"
    assert restored.details["type"] == "OrderFilled"


def test_the_reply_carries_kind_message_field_and_details():
    reply = OrderRejectedError("insufficient funds", details={"broker_code": "bp"}).to_reply()

    assert reply == ErrorReply(
        kind=ErrorKind.ORDER_REJECTED,
        message="insufficient funds",
        details={"broker_code": "bp"},
    )


def test_only_timeouts_rate_limits_and_api_errors_are_retried():
    transient = {kind for kind in ErrorKind if kind.is_transient}

    assert transient == {ErrorKind.API_ERROR, ErrorKind.RATE_LIMITED, ErrorKind.BROKER_TIMEOUT}
    assert BrokerTimeout.KIND.is_transient
    assert not ErrorKind.BROKER_UNAVAILABLE.is_transient


@pytest.mark.parametrize("reason", list(SkipReason))
def test_every_no_trade_reason_is_an_error_kind_a_caller_can_see(reason):
    assert reason.error_kind.value == reason.value


def test_an_error_prints_as_its_message():
    error = StrikeNotFound("no 592/589 put spread listed for 2025-12-19")

    assert str(error) == "no 592/589 put spread listed for 2025-12-19"
    assert repr(error) == (
        "StrikeNotFound(STRIKE_NOT_FOUND: 'no 592/589 put spread listed for 2025-12-19')"
    )
