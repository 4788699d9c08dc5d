"""Properties over everything the core can build: LIMIT orders only, valid shapes,
marketable rounding, the exits' debit arithmetic, and report folds the table allows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st
from tastytrade.order import OrderType

from libs.broker.mapping import order_to_sdk
from libs.contracts.execution import (
    LegFill,
    OrderAction,
    OrderStatus,
    OrderSubmitted,
    check_order_shape,
)
from libs.contracts.strategy import Suggestion
from libs.domain.lifecycle import next_status
from libs.domain.money import TICK, marketable
from services.execution.core import (
    Accepted,
    Cancelled,
    Expired,
    Fills,
    OrderSpec,
    Rejected,
    Replaced,
    opening_order,
    plan_position,
    profit_target_debit,
    profit_targets,
    replacement_order,
)
from services.execution.core import lifecycle_facts as facts_of
from tests.unit.contracts.strategies import suggestions
from tests.unit.execution.builders import AT, TRIDENT_LEGS, fill, report

D = Decimal
prices = st.decimals(min_value=D("0.01"), max_value=D("60"), places=2)
credits = st.decimals(min_value=D("0.01"), max_value=D(100), places=4)


def assert_valid_limit_order(spec: OrderSpec) -> None:
    """A LIMIT order of the right shape that the contracts would record."""
    check_order_shape(spec.purpose, spec.legs, spec.time_in_force)
    assert spec.limit_price == spec.limit_price.quantize(TICK)
    assert spec.limit_price != 0
    assert (spec.limit_price > 0) is (not spec.purpose.is_exit)
    assert order_to_sdk(spec.request()).order_type is OrderType.LIMIT
    OrderSubmitted(
        occurred_at=AT,
        producer="execution",
        account_id="5WT00001",
        correlation_id=uuid4(),
        **spec.submitted_fields(),
    )


@given(suggestion=suggestions(), credit=credits)
def test_every_opening_is_a_valid_limit_order(suggestion: Suggestion, credit: Decimal) -> None:
    assert_valid_limit_order(opening_order(suggestion, credit, reservation_id=uuid4()))


@given(short_put=prices, long_put=prices, short_call=prices, long_call=prices, calls=st.booleans())
def test_every_exit_and_replacement_is_a_valid_closing_limit_order(
    short_put: Decimal, long_put: Decimal, short_call: Decimal, long_call: Decimal, calls: bool
) -> None:
    fills = [
        fill(TRIDENT_LEGS[0].symbol, OrderAction.SELL_TO_OPEN, 2, str(short_put), "a"),
        fill(TRIDENT_LEGS[1].symbol, OrderAction.BUY_TO_OPEN, 2, str(long_put), "b"),
        fill(TRIDENT_LEGS[2].symbol, OrderAction.SELL_TO_OPEN, 1, str(short_call), "c"),
        fill(TRIDENT_LEGS[3].symbol, OrderAction.BUY_TO_OPEN, 1, str(long_call), "d"),
    ]
    legs = TRIDENT_LEGS if calls else TRIDENT_LEGS[:2]
    plan = plan_position(legs, fills if calls else fills[:2])
    assert plan.total_entry_credit == sum(s.entry_credit * s.quantity for s in plan.spreads)
    assert plan.max_risk >= 0
    exits, skipped = profit_targets(plan, uuid4())
    assert len(exits) + len(skipped) == len(plan.spreads)
    for planned in exits:
        assert_valid_limit_order(planned.order)
        replacement = replacement_order(
            original=planned.order, order_id=uuid4(), limit_price=planned.order.limit_price * 2
        )
        assert_valid_limit_order(replacement)


@given(price=st.decimals(min_value=D(-100), max_value=D(100), places=6))
def test_rounding_is_on_the_tick_and_never_less_marketable(price: Decimal) -> None:
    rounded = marketable(price)
    assert rounded == rounded.quantize(TICK)
    assert rounded <= price  # less credit asked, or more debit offered
    assert price - rounded < TICK


@given(
    entry=st.decimals(min_value=D("0.01"), max_value=D(50), places=3),
    target=st.sampled_from([D("0.40"), D("0.60"), D("0.50")]),
)
def test_the_profit_target_pays_back_at_least_the_untaken_credit_within_a_tick(
    entry: Decimal, target: Decimal
) -> None:
    limit = profit_target_debit(entry, target)
    owed = entry * (1 - target)
    assert limit < 0 or owed == 0
    assert -limit >= owed
    assert -limit - owed < TICK


_STATUSES = st.sampled_from(
    [
        OrderStatus.SUBMITTED,
        OrderStatus.WORKING,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.REJECTED,
        OrderStatus.CANCELLED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
    ]
)
_EVENT = {
    Accepted: "OrderAccepted",
    Rejected: "OrderRejected",
    Cancelled: "OrderCancelled",
    Expired: "OrderExpired",
    Replaced: "OrderReplaced",
}


@given(reports=st.lists(st.tuples(_STATUSES, st.integers(0, 4)), min_size=1, max_size=12))
def test_any_sequence_of_reports_folds_through_allowed_transitions(
    reports: list[tuple[OrderStatus, int]],
) -> None:
    all_fills = [
        fill(leg.symbol, leg.action, leg.quantity, "1.00", f"f{i}")
        for i, leg in enumerate(TRIDENT_LEGS)
    ]
    status = OrderStatus.SUBMITTED
    recorded: dict[str, LegFill] = {}
    ended_as: OrderStatus | None = None
    for broker_status, filled in reports:
        fills = tuple(all_fills[:filled])
        if broker_status is OrderStatus.FILLED:
            fills = tuple(all_fills)
        for fact in facts_of(status, recorded, report(broker_status, fills)):
            name: Any = (
                ("OrderFilled" if fact.complete else "OrderPartiallyFilled")
                if isinstance(fact, Fills)
                else _EVENT[type(fact)]
            )
            status = next_status(status, name)  # raises when the table refuses it
            if isinstance(fact, Fills):
                ids = [f.broker_fill_id for f in fact.fills]
                assert len(ids) == len(set(ids))
                assert set(recorded) <= set(ids)
                recorded = {f.broker_fill_id: f for f in fact.fills}
        if ended_as is not None:
            assert status is ended_as  # nothing moves a terminal order
        elif status.is_terminal:
            ended_as = status
