"""THE opening order: risk's dry run and execution's placement send one request."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.envelope import new_event_id
from libs.contracts.execution import OrderAction, OrderSubmitted, TimeInForce, ratio_unit
from libs.contracts.strategy import Suggestion
from libs.domain.orders import decision_id_of, opening_order_id
from libs.domain.trident import opening_legs, opening_order_request, order_unit
from services.execution.core import opening_order
from services.execution.projection import OrderBook, apply
from tests.integration.replay.scenario import (
    CALL_592,
    CALL_595,
    PUT_589,
    PUT_592,
    START,
    suggestion,
)

D = Decimal


def _puts_only(full: Suggestion) -> Suggestion:
    return full.model_copy(
        update={
            "spreads": full.spreads[:2],
            "near_bollinger_band": True,
            "band_reason": "price at the upper band",
        }
    )


def test_a_full_trident_is_one_2_2_1_1_unit_at_the_limit_credit() -> None:
    reservation = new_event_id()
    order = opening_order_request(
        suggestion(new_event_id(), START), D("3.65"), reservation_id=reservation
    )
    assert [(leg.symbol, leg.action, leg.quantity) for leg in order.legs] == [
        (PUT_592, OrderAction.SELL_TO_OPEN, 2),
        (PUT_589, OrderAction.BUY_TO_OPEN, 2),
        (CALL_592, OrderAction.SELL_TO_OPEN, 1),
        (CALL_595, OrderAction.BUY_TO_OPEN, 1),
    ]
    assert order.ratio_unit == 1
    assert order.limit_price == D("3.65")
    assert order.time_in_force is TimeInForce.DAY
    assert order.underlying == "QQQ"
    assert decision_id_of(order.client_tag) == opening_order_id(reservation)


def test_without_the_call_spread_the_order_is_2_2() -> None:
    puts = _puts_only(suggestion(new_event_id(), START))
    order = opening_order_request(puts, D("1.10"), reservation_id=new_event_id())
    assert [(leg.symbol, leg.quantity) for leg in order.legs] == [(PUT_592, 2), (PUT_589, 2)]
    assert order.ratio_unit == 2
    assert order.limit_price == D("1.10")  # one put spread's credit: already order units


@pytest.mark.parametrize("limit", ["0", "-1.00", "0.009", "NaN"])
def test_an_opening_limit_is_a_positive_credit_on_the_tick(limit: str) -> None:
    with pytest.raises(ValueError, match=r"positive credit|nothing to collect"):
        opening_order_request(
            suggestion(new_event_id(), START), D(limit), reservation_id=new_event_id()
        )


def test_a_credit_off_the_tick_asks_less() -> None:
    order = opening_order_request(
        suggestion(new_event_id(), START), D("2.107"), reservation_id=new_event_id()
    )
    assert order.limit_price == D("2.10")


@pytest.mark.parametrize("calls", [True, False])
def test_the_order_unit_is_the_ratio_unit_of_the_legs(calls: bool) -> None:
    full = suggestion(new_event_id(), START)
    shape = full if calls else _puts_only(full)
    assert order_unit(includes_call_spread=calls) == ratio_unit(opening_legs(shape))


@given(
    credit=st.decimals(min_value=D("0.01"), max_value=D(6), places=3),
    calls=st.booleans(),
)
def test_the_dry_run_request_is_the_placed_request(credit: Decimal, calls: bool) -> None:
    """Risk asks the broker about `opening_order_request`; execution records the order
    (OrderSubmitted), folds it and sends `OrderRecord.request()`. Nothing may differ: not
    the legs, the price after rounding, the time in force nor the client tag (both derive
    it from the reservation), so the dry run checked the very order that is placed."""
    full = suggestion(new_event_id(), START)
    shape = full if calls else _puts_only(full)
    reservation = uuid4()
    dry_run = opening_order_request(shape, credit, reservation_id=reservation)

    spec = opening_order(shape, credit, reservation_id=reservation)
    submitted = OrderSubmitted(
        occurred_at=START + timedelta(seconds=1),
        producer="execution",
        account_id="5WT00001",
        correlation_id=uuid4(),
        causation_id=uuid4(),
        **spec.submitted_fields(),
    )
    record = apply(OrderBook(), submitted).orders[spec.order_id]
    assert record.request() == dry_run
