"""The commands' answers from the state: views, listing, cancel and re-price checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from libs.contracts.errors import InvalidState, NotFound, ValidationFailed
from libs.contracts.execution import (
    OrderAction,
    OrderLeg,
    OrderPurpose,
    OrderStatus,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.strategy import SpreadKind
from services.execution.core import opening_order, position_id_for
from services.execution.projection import OrderBook, OrderRecord
from services.execution.state import ExecutionState
from services.execution.views import (
    cancellable,
    find_record,
    listed,
    order_view,
    remaining_legs,
    replacement,
    spec_of,
)
from tests.unit.execution import builders
from tests.unit.execution.builders import LONG_PUT, SHORT_PUT, D, fill
from tests.unit.execution.fakes import ACCOUNT, others

CLOSE = (
    OrderLeg(symbol=SHORT_PUT, action=OrderAction.BUY_TO_CLOSE, quantity=1),
    OrderLeg(symbol=LONG_PUT, action=OrderAction.SELL_TO_CLOSE, quantity=1),
)


def _opening() -> OrderRecord:
    state = ExecutionState()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    state.apply(OrderSubmitted(**others(), **spec.submitted_fields()))
    record = state.order(spec.order_id)
    assert record is not None
    return record


def _working_exit(**changes: Any) -> OrderRecord:
    fields: dict[str, Any] = {
        "purpose": OrderPurpose.PROFIT_TARGET,
        "status": OrderStatus.WORKING,
        "broker_order_id": "7",
        "position_id": uuid4(),
        "spread_kind": SpreadKind.PUT_SPREAD_1,
        "limit_price": D("-1.00"),
        "legs": CLOSE,
        "time_in_force": TimeInForce.GTC,
        **changes,
    }
    return replace(_opening(), **fields)


def test_a_missing_order_is_not_found_with_its_id() -> None:
    order_id = uuid4()
    with pytest.raises(NotFound) as raised:
        find_record(OrderBook(), ACCOUNT, order_id)
    assert raised.value.details == {"order_id": str(order_id)}


def test_an_opening_names_its_position_only_once_opened() -> None:
    record = _opening()
    assert order_view(record, set()).position_id is None
    opened = position_id_for(record.order_id)
    view = order_view(record, {opened})
    assert view.position_id == opened
    assert view.order_id == record.order_id
    assert view.client_tag == record.client_tag
    exit_record = _working_exit()
    assert order_view(exit_record, set()).position_id == exit_record.position_id


def test_orders_are_listed_newest_first_and_open_only_on_request() -> None:
    old = _opening()
    new = replace(_opening(), submitted_at=old.submitted_at + timedelta(minutes=1))
    ended = replace(
        _opening(),
        status=OrderStatus.CANCELLED,
        submitted_at=old.submitted_at + timedelta(minutes=2),
    )
    book = OrderBook(orders=OrderBook().orders.update({r.order_id: r for r in (old, new, ended)}))
    assert listed(book, open_only=True) == [new, old]
    assert listed(book, open_only=False) == [ended, new, old]


def test_only_an_acknowledged_order_not_ended_can_be_cancelled() -> None:
    cancellable(_working_exit())
    with pytest.raises(InvalidState, match="still being sent"):
        cancellable(_opening())
    with pytest.raises(InvalidState, match="FILLED"):
        cancellable(_working_exit(status=OrderStatus.FILLED))


def test_the_spec_of_a_record_is_the_decision_it_was_recorded_from() -> None:
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    state = ExecutionState()
    state.apply(OrderSubmitted(**others(), **spec.submitted_fields()))
    record = state.order(spec.order_id)
    assert record is not None
    assert spec_of(record) == spec


def test_the_remaining_legs_are_what_is_not_filled_yet() -> None:
    record = _working_exit(legs=builders.TRIDENT_LEGS[:2])
    assert list(remaining_legs(record)) == list(record.legs)
    fills = {"f1": fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, 1, "2.10", "f1")}
    partly = replace(record, fills=record.fills.update(fills))
    left = {leg.symbol: leg.quantity for leg in remaining_legs(partly)}
    assert left == {SHORT_PUT: 1, LONG_PUT: 2}
    every = {
        "f1": fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, 2, "2.10", "f1"),
        "f2": fill(LONG_PUT, OrderAction.BUY_TO_OPEN, 2, "1.05", "f2"),
    }
    done = replace(record, fills=record.fills.update(every))
    assert list(remaining_legs(done)) == list(record.legs)


def test_only_a_working_closing_order_is_repriced() -> None:
    new_id = uuid4()
    with pytest.raises(InvalidState, match="only closing orders"):
        replacement(_opening(), new_id, D("-1.00"))
    with pytest.raises(InvalidState, match="nothing to re-price"):
        replacement(_working_exit(status=OrderStatus.CANCELLED), new_id, D("-1.00"))
    with pytest.raises(InvalidState, match="nothing to re-price"):
        replacement(_working_exit(broker_order_id=None), new_id, D("-1.00"))
    with pytest.raises(ValidationFailed) as invalid:
        replacement(_working_exit(), new_id, D("1.00"))
    assert invalid.value.field == "limit_price"
    old = _working_exit()
    spec = replacement(old, new_id, D("-1.10"))
    assert spec.order_id == new_id
    assert spec.replaces_order_id == old.order_id
    assert spec.limit_price == D("-1.10")
