"""Properties: exits only ever close, never pay above the width, P&L arithmetic adds up,
and the sync diff only reports."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.execution import OrderPurpose, TimeInForce, check_order_shape
from libs.contracts.market import Quote
from libs.contracts.positions import AttentionReason, PositionSpread
from libs.contracts.strategy import SpreadKind
from libs.domain.money import TICK, debit_limit
from services.position_monitor.core import (
    AppPosition,
    ExitDecision,
    WorkingExit,
    diff_broker_positions,
    plan_stop_loss,
    plan_time_exit,
    realized_pnl,
    reprice_stop_loss,
    time_exit_ceiling,
    unrealized_pnl,
    value_position,
    value_spread,
)
from tests.unit.position_monitor.builders import (
    EXPIRATION,
    NOW,
    POSITION,
    D,
    spread,
)

cents = st.decimals(min_value=D("0"), max_value=D("12"), places=2)
widths = st.sampled_from([3, 5, 7, 9])
quantities = st.integers(min_value=1, max_value=20)
kinds = st.sampled_from(list(SpreadKind))
dtes = st.integers(min_value=-3, max_value=7)
purposes = st.sampled_from([None, *[p for p in OrderPurpose if p.is_exit]])


@st.composite
def spreads(draw: st.DrawFn) -> PositionSpread:
    width = draw(widths)
    entry = draw(st.decimals(min_value=D("0.01"), max_value=D(width) - TICK, places=2))
    return spread(draw(kinds), entry, draw(quantities), width)


@st.composite
def quoted(draw: st.DrawFn, held: PositionSpread) -> dict[str, Quote]:
    out: dict[str, Quote] = {}
    for symbol in (held.short_symbol, held.long_symbol):
        bid = draw(cents)
        ask = bid + draw(st.decimals(min_value=D("0"), max_value=D("1"), places=2))
        out[symbol] = Quote(symbol=symbol, bid=bid, ask=ask, quoted_at=NOW)
    return out


def working_of(purpose: OrderPurpose | None, price: Decimal) -> WorkingExit | None:
    return None if purpose is None else WorkingExit(UUID(int=42), purpose, price)


def assert_closes_only(decision: ExitDecision, held: PositionSpread) -> None:
    check_order_shape(decision.purpose, decision.legs, decision.time_in_force)
    assert decision.time_in_force is TimeInForce.GTC
    assert all(not leg.action.is_opening for leg in decision.legs)
    by_symbol = {leg.symbol: leg for leg in decision.legs}
    assert by_symbol[held.short_symbol].action.is_buy  # buy back the short
    assert not by_symbol[held.long_symbol].action.is_buy  # sell the long
    assert all(leg.quantity == held.quantity for leg in decision.legs)
    assert decision.limit_price < 0
    assert decision.limit_price == decision.limit_price.quantize(TICK)
    assert -decision.limit_price <= held.width


@given(spreads(), dtes, purposes, st.data())
def test_time_exits_only_close_and_never_exceed_the_width(
    held: PositionSpread, dte: int, purpose: OrderPurpose | None, data: st.DataObject
) -> None:
    ceiling = time_exit_ceiling(held, dte)
    assert ceiling <= held.width
    assert ceiling >= min(held.entry_credit, held.width)
    working = working_of(purpose, -data.draw(cents))
    decision = plan_time_exit(POSITION, held, dte, working)
    if decision is not None:
        assert_closes_only(decision, held)
        assert decision.purpose is OrderPurpose.TIME_EXIT
        assert -decision.limit_price >= ceiling  # rounding only ever pays more
        assert -decision.limit_price - ceiling < TICK


@given(spreads())
def test_ceilings_rise_as_expiration_nears(held: PositionSpread) -> None:
    ladder = [time_exit_ceiling(held, dte) for dte in (7, 6, 5, 4, 3, 2, 1, 0)]
    assert ladder == sorted(ladder)
    assert ladder[-1] == held.width


@given(spreads(), purposes, st.data())
def test_stop_losses_only_close_and_never_exceed_the_width(
    held: PositionSpread, purpose: OrderPurpose | None, data: st.DataObject
) -> None:
    value = value_spread(held, data.draw(quoted(held)))
    working = working_of(purpose, -data.draw(cents))
    decision = plan_stop_loss(POSITION, held, value, working)
    if decision is not None:
        assert value.closing_cost_mid >= 2 * held.entry_credit
        assert_closes_only(decision, held)
    if purpose is OrderPurpose.STOP_LOSS and working is not None:
        repriced = reprice_stop_loss(POSITION, held, value, working)
        if repriced is not None:
            assert_closes_only(repriced, held)
            assert repriced.limit_price != working.limit_price
            assert repriced.replaces_order_id == working.order_id


@given(st.decimals(min_value=D("-50"), max_value=D("50"), places=4))
def test_debit_rounding_is_the_smallest_tick_at_or_above(debit: Decimal) -> None:
    price = debit_limit(debit)
    assert price < 0
    assert -price >= debit
    assert -price - max(debit, TICK) < TICK


@given(spreads(), st.data())
def test_pnl_arithmetic_is_consistent(held: PositionSpread, data: st.DataObject) -> None:
    market = data.draw(quoted(held))
    value = value_spread(held, market)
    # Closing at mid realises exactly the unrealised P&L.
    assert realized_pnl(held.entry_credit, value.closing_cost_mid, held.quantity) == (
        value.unrealized_pnl
    )
    # Dollars scale with quantity and are 100 x the per-share difference.
    per_one = unrealized_pnl(held.entry_credit, value.closing_cost_mid, 1)
    assert value.unrealized_pnl == per_one * held.quantity
    # The natural never costs less than the mid.
    assert value.closing_cost_natural >= value.closing_cost_mid
    # Position totals are the sums over the spreads.
    valuation = value_position([held], EXPIRATION, market, NOW)
    assert valuation.unrealized_pnl == sum(s.unrealized_pnl for s in valuation.figures.spreads)


@given(
    st.lists(st.tuples(st.sampled_from([3, 5]), st.integers(1, 3)), min_size=1, max_size=4),
    st.data(),
)
def test_sync_reports_only_and_agrees_with_itself(
    shapes: list[tuple[int, int]], data: st.DataObject
) -> None:
    positions = [
        AppPosition.of_spreads(UUID(int=n + 1), "QQQ", [spread(SpreadKind.PUT_SPREAD_1, "1", q, w)])
        for n, (w, q) in enumerate(shapes)
    ]
    expected: dict[str, int] = {}
    for position in positions:
        for symbol, quantity in position.legs.items():
            expected[symbol] = expected.get(symbol, 0) + quantity
    assert diff_broker_positions(positions, expected).in_sync
    assert all(
        f.reason is AttentionReason.GONE_AT_BROKER and not f.active
        for f in diff_broker_positions(positions, {}).findings
    )
    symbol = data.draw(st.sampled_from(sorted(expected)))
    changed = {**expected, symbol: expected[symbol] + data.draw(st.sampled_from([-1, 1]))}
    diff = diff_broker_positions(positions, changed)
    owners = {p.position_id for p in positions if symbol in p.legs}
    assert {f.position_id for f in diff.findings} == owners
    assert all(f.reason is AttentionReason.BROKER_MISMATCH for f in diff.findings)
    assert diff.unowned == ()
