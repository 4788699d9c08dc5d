"""Openings, exits and replacements are valid LIMIT orders for their purpose."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tastytrade.order import OrderType

from libs.broker.mapping import order_to_sdk
from libs.contracts.execution import OrderAction, OrderPurpose, TimeInForce
from libs.contracts.strategy import SpreadKind, Suggestion
from libs.domain.orders import client_tag_for, opening_order_id
from libs.domain.trident import closing_legs
from services.execution.core import (
    InvalidOrder,
    OrderSpec,
    check_limit_order,
    exit_order,
    opening_order,
    replacement_order,
)
from tests.unit.contracts.strategies import suggestions
from tests.unit.execution import builders
from tests.unit.execution.builders import LONG_PUT, SHORT_PUT, TRIDENT_LEGS

D = Decimal


def _opening(suggestion: Suggestion, credit: Decimal) -> OrderSpec:
    reservation = uuid4()
    return opening_order(suggestion, credit, reservation_id=reservation)


@given(suggestion=suggestions(), credit=st.decimals(min_value=D("0.01"), max_value=D(100)))
def test_every_opening_is_a_day_limit_credit_with_trident_legs(
    suggestion: Suggestion, credit: Decimal
) -> None:
    spec = _opening(suggestion, credit)
    assert spec.purpose is OrderPurpose.OPEN
    assert spec.time_in_force is TimeInForce.DAY
    quantities = [leg.quantity for leg in spec.legs]
    assert quantities == ([2, 2, 1, 1] if suggestion.includes_call_spread else [2, 2])
    assert all(leg.action.is_opening for leg in spec.legs)
    assert 0 < spec.limit_price <= credit
    assert credit - spec.limit_price < D("0.01")  # rounded down to the tick, no further
    sdk = order_to_sdk(spec.request())
    assert sdk.order_type is OrderType.LIMIT
    assert sdk.external_identifier == client_tag_for(spec.order_id)


def test_the_opening_carries_the_approved_price_per_ratio_unit() -> None:
    suggestion = builders.suggestion()
    spec = _opening(suggestion, D("2.457"))
    assert spec.limit_price == D("2.45")
    assert spec.request().limit_price == D("2.45")


@pytest.mark.parametrize("credit", [D(0), D("-1.00"), D("0.004")])
def test_an_opening_without_a_credit_is_refused(credit: Decimal) -> None:
    with pytest.raises(InvalidOrder):
        _opening(builders.suggestion(), credit)


def test_without_the_call_spread_the_order_is_two_to_two() -> None:
    spec = _opening(builders.suggestion(calls=False), D("1.05"))
    assert [(leg.symbol, leg.quantity) for leg in spec.legs] == [
        (builders.SHORT_PUT, 2),
        (builders.LONG_PUT, 2),
    ]
    assert spec.request().ratio_unit == 2


def test_the_client_tag_is_derived_from_the_reservation() -> None:
    reservation = uuid4()
    assert opening_order_id(reservation) == opening_order_id(reservation)
    assert opening_order_id(reservation) != opening_order_id(uuid4())


def test_an_exit_closes_only_and_is_a_gtc_debit() -> None:
    spec = exit_order(
        order_id=uuid4(),
        underlying="QQQ",
        position_id=uuid4(),
        spread_kind=SpreadKind.PUT_SPREAD_1,
        purpose=OrderPurpose.STOP_LOSS,
        legs=closing_legs(SHORT_PUT, LONG_PUT),
        limit_price=D("-2.101"),
    )
    assert spec.limit_price == D("-2.11")
    assert spec.time_in_force is TimeInForce.GTC
    assert [leg.action for leg in spec.legs] == [
        OrderAction.BUY_TO_CLOSE,
        OrderAction.SELL_TO_CLOSE,
    ]


@pytest.mark.parametrize("price", [D("1.00"), D(0)])
def test_an_exit_at_a_credit_or_zero_is_refused(price: Decimal) -> None:
    with pytest.raises(InvalidOrder, match="debit"):
        exit_order(
            order_id=uuid4(),
            underlying="QQQ",
            position_id=uuid4(),
            spread_kind=SpreadKind.PUT_SPREAD_1,
            purpose=OrderPurpose.TIME_EXIT,
            legs=closing_legs(SHORT_PUT, LONG_PUT),
            limit_price=price,
        )


def test_an_exit_with_opening_legs_is_refused() -> None:
    with pytest.raises(InvalidOrder, match="CLOSE"):
        exit_order(
            order_id=uuid4(),
            underlying="QQQ",
            position_id=uuid4(),
            spread_kind=SpreadKind.PUT_SPREAD_1,
            purpose=OrderPurpose.PROFIT_TARGET,
            legs=TRIDENT_LEGS[:2],
            limit_price=D("-1.00"),
        )


def test_an_opening_cannot_be_gtc_or_off_the_tick() -> None:
    base = OrderSpec(
        order_id=uuid4(),
        purpose=OrderPurpose.OPEN,
        underlying="QQQ",
        legs=TRIDENT_LEGS,
        limit_price=D("2.50"),
        time_in_force=TimeInForce.GTC,
        suggestion_id=uuid4(),
        reservation_id=uuid4(),
    )
    with pytest.raises(InvalidOrder, match="DAY"):
        check_limit_order(base)
    with pytest.raises(InvalidOrder, match="tick"):
        check_limit_order(replace(base, time_in_force=TimeInForce.DAY, limit_price=D("2.505")))


def test_a_replacement_reprices_a_closing_order_for_what_is_left() -> None:
    original = exit_order(
        order_id=uuid4(),
        underlying="QQQ",
        position_id=uuid4(),
        spread_kind=SpreadKind.PUT_SPREAD_2,
        purpose=OrderPurpose.STOP_LOSS,
        legs=closing_legs(SHORT_PUT, LONG_PUT),
        limit_price=D("-2.00"),
    )
    new_id = uuid4()
    spec = replacement_order(original=original, order_id=new_id, limit_price=D("-2.104"))
    assert spec.replaces_order_id == original.order_id
    assert spec.order_id == new_id
    assert spec.limit_price == D("-2.11")
    assert spec.legs == original.legs
    assert spec.client_tag != original.client_tag


def test_an_opening_is_never_repriced() -> None:
    opening = _opening(builders.suggestion(), D("2.50"))
    with pytest.raises(InvalidOrder, match="closing"):
        replacement_order(original=opening, order_id=uuid4(), limit_price=D("2.40"))
