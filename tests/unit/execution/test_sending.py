"""Sending: refused when stale or superseded wrongly, retried, looked up, never doubled."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import uuid4

import pytest

from libs.contracts.errors import (
    ApiError,
    AuthFailed,
    BrokerTimeout,
    BrokerUnavailable,
    ErrorKind,
    RateLimited,
)
from libs.contracts.execution import (
    OrderAccepted,
    OrderFilled,
    OrderPurpose,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
)
from libs.contracts.system import TradingSuspended
from libs.domain.orders import opening_order_id
from services.execution.core import opening_order
from services.execution.projection import OrderRecord
from services.execution.sending import send_refusal, superseded_refusal
from services.execution.state import ExecutionState
from tests.unit.execution import builders
from tests.unit.execution.builders import AT, D
from tests.unit.execution.fakes import Execution, others


def _opening(state: ExecutionState | None = None) -> OrderRecord:
    state = state or ExecutionState()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    state.apply(OrderSubmitted(**others(), **spec.submitted_fields()))
    record = state.order(spec.order_id)
    assert record is not None
    return record


def test_an_opening_is_sent_only_in_the_session_it_was_approved_for() -> None:
    state = ExecutionState()
    record = _opening(state)
    assert send_refusal(record, AT, state) is None
    closed = send_refusal(record, AT.replace(hour=21), state)
    assert closed is not None
    assert closed[0] is ErrorKind.MARKET_CLOSED
    next_day = send_refusal(record, AT + timedelta(days=1), state)
    assert next_day == (
        ErrorKind.MARKET_CLOSED,
        "the session of 2025-06-03 it was approved for ended",
    )


def test_a_repricing_is_sent_only_while_its_original_works() -> None:
    state = ExecutionState()
    original = _opening(state)
    pricing = replace(original, order_id=uuid4(), purpose=OrderPurpose.PROFIT_TARGET)
    unknown = replace(pricing, replaces_order_id=uuid4())
    assert send_refusal(unknown, AT, state) == (
        ErrorKind.INVALID_STATE,
        "the order it re-prices is unknown",
    )
    unanswered = replace(pricing, replaces_order_id=original.order_id)
    assert send_refusal(unanswered, AT, state) == (
        ErrorKind.INVALID_STATE,
        "the order it re-prices is SUBMITTED",
    )
    state.apply(
        OrderAccepted(
            **others(cause=state.causes[original.order_id]),
            order_id=original.order_id,
            broker_order_id="7",
        )
    )
    assert send_refusal(unanswered, AT, state) is None


def test_an_exit_is_not_sent_once_the_exit_it_supersedes_filled() -> None:
    record = _opening()
    assert superseded_refusal(None) is None
    assert superseded_refusal(record) is None
    filled = replace(record, status=OrderStatus.FILLED)
    refusal = superseded_refusal(filled)
    assert refusal is not None
    assert refusal[0] is ErrorKind.INVALID_STATE
    assert str(record.order_id) in refusal[1]


async def test_rate_limits_and_server_errors_are_retried_then_placed_once() -> None:
    execution = Execution()
    execution.broker.failures = [RateLimited("slow down"), ApiError("boom")]
    reserved = await execution.reserve()
    await execution.settle()
    order_id = opening_order_id(reserved.reservation_id)
    assert len(execution.broker.placed) == 1
    assert execution.of(OrderAccepted, order_id=order_id)
    registry = execution.service_metrics.registry
    retries = registry.get_sample_value(
        "senex_broker_retries_total", {"service": "execution", "kind": "RATE_LIMITED"}
    )
    assert retries == 1


async def test_after_a_timeout_the_order_found_by_its_tag_is_not_sent_again() -> None:
    execution = Execution()
    execution.broker.fill = True
    reserved = await execution.reserve()
    order_id = opening_order_id(reserved.reservation_id)
    record = execution.state.order(order_id)
    assert record is not None
    # The broker took the order but its answer was lost: the next attempt looks it up.
    execution.broker.add(record.request(), OrderStatus.FILLED)
    execution.broker.failures = [BrokerTimeout("no answer")]
    await execution.settle()
    opening_requests = [r for r in execution.broker.placed if r.client_tag == record.client_tag]
    assert opening_requests == []  # the first attempt timed out before the broker kept it
    assert len(execution.of(OrderFilled, order_id=order_id)) == 1


async def test_retries_are_bounded_and_the_last_error_is_recorded() -> None:
    execution = Execution()
    execution.broker.failures = [RateLimited("slow down") for _ in range(5)]
    reserved = await execution.reserve()
    await execution.settle()
    (rejected,) = execution.of(OrderRejected)
    assert rejected.order_id == opening_order_id(reserved.reservation_id)
    assert rejected.kind is ErrorKind.RATE_LIMITED
    assert rejected.reason == "gave up after 5 attempts: slow down"
    assert execution.broker.placed == []


async def test_an_unreachable_broker_fails_the_order_and_suspends_trading() -> None:
    execution = Execution()
    execution.broker.failures = [BrokerUnavailable("connection refused")]
    await execution.reserve()
    await execution.settle()
    (rejected,) = execution.of(OrderRejected)
    assert rejected.kind is ErrorKind.BROKER_UNAVAILABLE
    (suspended,) = execution.of(TradingSuspended)
    assert suspended.reason is ErrorKind.BROKER_UNAVAILABLE


async def test_an_unreachable_broker_after_a_timeout_leaves_the_order_for_reconciliation() -> None:
    execution = Execution()
    execution.broker.failures = [BrokerTimeout("no answer"), BrokerUnavailable("gone")]
    await execution.reserve()
    await execution.settle()
    assert execution.of(OrderRejected) == []  # maybe sent: never declared failed
    assert len(execution.of(TradingSuspended)) == 1


async def test_a_refused_session_is_refreshed_and_the_order_retried() -> None:
    execution = Execution()
    execution.broker.failures = [AuthFailed("token expired")]
    reserved = await execution.reserve()
    await execution.settle()
    assert execution.broker.expired == [reserved.account_id]
    assert execution.of(OrderAccepted)


@pytest.mark.parametrize("resume", [True, False])
async def test_an_order_already_answered_is_not_sent(resume: bool) -> None:
    execution = Execution()
    execution.broker.fill = True
    reserved = await execution.reserve()
    await execution.settle()
    placed = len(execution.broker.placed)
    order_id = opening_order_id(reserved.reservation_id)
    await execution.sender.drive(reserved.account_id, order_id, resume, None)
    assert len(execution.broker.placed) == placed
