"""Entry credits from fill prices, max risk, and the profit targets' debits (DOMAIN.md 6)."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from libs.contracts.execution import OrderAction, OrderPurpose, TimeInForce
from libs.contracts.strategy import SpreadKind
from services.execution.core import (
    InvalidOrder,
    plan_position,
    profit_target_debit,
    profit_target_order_id,
    profit_targets,
)
from tests.unit.execution.builders import (
    LONG_PUT,
    SHORT_PUT,
    TRIDENT_LEGS,
    fill,
    trident_fills,
)

D = Decimal


def test_entry_credit_is_short_fill_minus_long_fill_per_spread() -> None:
    plan = plan_position(TRIDENT_LEGS, trident_fills())
    credits = {s.kind: s.entry_credit for s in plan.spreads}
    assert credits == {
        SpreadKind.PUT_SPREAD_1: D("1.05"),
        SpreadKind.PUT_SPREAD_2: D("1.05"),
        SpreadKind.CALL_SPREAD: D("0.80"),
    }
    assert plan.total_entry_credit == D("2.90")
    assert plan.width == D(3)
    # 2 x W x 100 - total credit x 100: only one side can lose at expiry.
    assert plan.max_risk == D(600) - D(290)
    assert plan.underlying == "QQQ"


def test_fills_at_several_prices_are_averaged_by_quantity() -> None:
    fills = (
        fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, 1, "2.10", "a"),
        fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, 1, "2.12", "b"),
        fill(LONG_PUT, OrderAction.BUY_TO_OPEN, 2, "1.05", "c"),
    )
    plan = plan_position(TRIDENT_LEGS[:2], fills)
    assert [s.entry_credit for s in plan.spreads] == [D("1.06"), D("1.06")]
    assert plan.max_risk == D(600) - D("2.12") * 100


def test_an_unfilled_leg_is_no_position() -> None:
    with pytest.raises(InvalidOrder, match="no fill"):
        plan_position(TRIDENT_LEGS, trident_fills()[:3])


@pytest.mark.parametrize(
    ("entry", "target", "limit"),
    [
        ("1.05", "0.40", "-0.63"),  # keep 40 %: pay back 60 %
        ("1.05", "0.60", "-0.42"),
        ("0.80", "0.50", "-0.40"),
        ("1.01", "0.40", "-0.61"),  # 0.606 -> a debit rounds up
        ("1.005", "0.60", "-0.41"),  # 0.402 -> 0.41
    ],
)
def test_profit_target_debit_is_entry_times_one_minus_target_rounded_up(
    entry: str, target: str, limit: str
) -> None:
    assert profit_target_debit(D(entry), D(target)) == D(limit)


def test_three_gtc_closing_orders_one_per_spread() -> None:
    plan = plan_position(TRIDENT_LEGS, trident_fills())
    position_id = uuid4()
    exits, skipped = profit_targets(plan, position_id)
    assert skipped == ()
    prices = {e.spread_kind: e.order.limit_price for e in exits}
    assert prices == {
        SpreadKind.PUT_SPREAD_1: D("-0.63"),
        SpreadKind.PUT_SPREAD_2: D("-0.42"),
        SpreadKind.CALL_SPREAD: D("-0.40"),
    }
    for planned in exits:
        order = planned.order
        assert order.order_id == profit_target_order_id(position_id, planned.spread_kind)
        assert order.purpose is OrderPurpose.PROFIT_TARGET
        assert order.time_in_force is TimeInForce.GTC
        assert order.position_id == position_id
        assert [leg.action for leg in order.legs] == [
            OrderAction.BUY_TO_CLOSE,
            OrderAction.SELL_TO_CLOSE,
        ]
        assert "profit target" in planned.reason


def test_two_targets_without_the_call_spread() -> None:
    plan = plan_position(TRIDENT_LEGS[:2], trident_fills()[:2])
    exits, _ = profit_targets(plan, uuid4())
    assert [e.spread_kind for e in exits] == [SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2]


def test_a_spread_opened_for_no_credit_gets_no_profit_target() -> None:
    plan = plan_position(TRIDENT_LEGS, trident_fills(short_call="0.80", long_call="0.80"))
    exits, skipped = profit_targets(plan, uuid4())
    assert [e.spread_kind for e in exits] == [SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2]
    assert [kind for kind, _ in skipped] == [SpreadKind.CALL_SPREAD]


def test_a_tiny_credit_still_gets_a_one_tick_debit() -> None:
    plan = plan_position(TRIDENT_LEGS[:2], trident_fills(short_put="1.06", long_put="1.05")[:2])
    exits, _ = profit_targets(plan, uuid4())
    assert {e.order.limit_price for e in exits} == {D("-0.01")}
