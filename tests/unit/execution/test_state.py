"""Execution's fold: idempotent, chains each order's events, remembers suspensions."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import OrderAccepted, OrderStatus, OrderSubmitted
from libs.contracts.strategy import SuggestionGenerated
from libs.contracts.system import TradingResumed, TradingSuspended
from services.execution.core import opening_order
from services.execution.state import ExecutionState
from tests.unit.execution.builders import AT, D, suggestion

ACCOUNT = "5WT00001"


def env() -> dict[str, Any]:
    return {
        "occurred_at": AT,
        "producer": "execution",
        "account_id": ACCOUNT,
        "correlation_id": new_event_id(),
    }


def submitted() -> OrderSubmitted:
    spec = opening_order(suggestion(), D("2.50"), reservation_id=uuid4())
    return OrderSubmitted(**env(), **spec.submitted_fields())


def test_an_order_event_folded_twice_changes_nothing_more() -> None:
    state = ExecutionState()
    event = submitted()
    state.apply(event)
    state.apply(event)
    accepted = OrderAccepted(
        **{**env(), **event.causation()}, order_id=event.order_id, broker_order_id="7"
    )
    state.apply(accepted)
    state.apply(accepted)
    record = state.order(event.order_id)
    assert record is not None
    assert record.status is OrderStatus.WORKING
    assert record.anomalies == ()
    assert state.causes[event.order_id] == accepted.causation()
    assert state.open_orders(ACCOUNT) == [record]


def test_a_suggestion_is_forgotten_once_its_order_is_recorded() -> None:
    state = ExecutionState()
    s = suggestion()
    state.apply(SuggestionGenerated(**env(), suggestion=s))
    assert s.suggestion_id in state.suggestions
    state.apply(submitted())
    assert s.suggestion_id not in state.suggestions


def test_suspension_lasts_until_trading_resumes() -> None:
    state = ExecutionState()
    state.apply(TradingSuspended(**env(), reason=ErrorKind.BROKER_UNAVAILABLE, message="down"))
    assert ACCOUNT in state.suspended
    state.apply(TradingResumed(**env(), message="back"))
    assert ACCOUNT not in state.suspended
