"""The opening order a reservation's dry run asks the broker about."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.broker.client_tags import decision_id_of
from libs.contracts.envelope import new_event_id
from libs.contracts.execution import OrderAction, TimeInForce
from services.risk.orders import opening_order
from tests.integration.replay.scenario import (
    CALL_592,
    CALL_595,
    PUT_589,
    PUT_592,
    START,
    suggestion,
)

D = Decimal


def test_a_full_trident_is_one_2_2_1_1_unit_at_the_limit_credit() -> None:
    decision = new_event_id()
    order = opening_order(suggestion(new_event_id(), START), D("3.65"), decision)
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
    assert decision_id_of(order.client_tag) == decision


def test_without_the_call_spread_the_order_is_2_2() -> None:
    full = suggestion(new_event_id(), START)
    puts = full.model_copy(
        update={
            "spreads": full.spreads[:2],
            "near_bollinger_band": True,
            "band_reason": "price at the upper band",
        }
    )
    order = opening_order(puts, D("1.10"), new_event_id())
    assert [(leg.symbol, leg.quantity) for leg in order.legs] == [(PUT_592, 2), (PUT_589, 2)]
    assert order.ratio_unit == 2
    assert order.limit_price == D("1.10")  # one put spread's credit: already order units


@pytest.mark.parametrize("limit", ["0", "-1.00"])
def test_an_opening_limit_is_a_positive_credit(limit: str) -> None:
    with pytest.raises(ValueError, match="positive credit"):
        opening_order(suggestion(new_event_id(), START), D(limit), new_event_id())
