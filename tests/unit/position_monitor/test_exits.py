"""Stop loss, the 7-DTE time exit and closing fills (DOMAIN.md 6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from libs.contracts.execution import LegFill, OrderAction, OrderPurpose, TimeInForce
from libs.contracts.positions import CloseReason, ExitOrderPlaced, SpreadClosed
from libs.contracts.strategy import SpreadKind
from libs.domain.money import debit_limit
from libs.runtime.clock import NEW_YORK
from services.position_monitor.core import (
    InvalidExit,
    InvalidFill,
    WorkingExit,
    close_by_fill,
    daily_run_time,
    exit_decision,
    latest_run_day,
    next_run_after,
    plan_stop_loss,
    plan_time_exit,
    plan_time_exits,
    position_realized_pnl,
    reprice_stop_loss,
    stop_loss_reprice_price,
    stop_loss_triggered,
    time_exit_ceiling,
    value_spread,
)
from services.position_monitor.core.valuation import SpreadValue
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    EXPIRATION,
    LONG_PUT,
    POSITION,
    SHORT_PUT,
    D,
    quote,
    quotes,
    spread,
    trident,
)

TARGET = WorkingExit(UUID(int=1), OrderPurpose.PROFIT_TARGET, D("-0.63"))


def valued(short: tuple[str, str], long: tuple[str, str], entry: str = "1.05") -> SpreadValue:
    market = quotes(quote(SHORT_PUT, *short), quote(LONG_PUT, *long))
    return value_spread(spread(entry=entry), market)


def ny(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK)


def as_event(decision_fields: dict[str, Any]) -> ExitOrderPlaced:
    return ExitOrderPlaced(
        occurred_at=datetime(2026, 1, 5, 16, 0, tzinfo=UTC),
        producer="position_monitor",
        account_id=ACCOUNT,
        correlation_id=POSITION,
        **decision_fields,
    )


# --- tick rounding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("debit", "price"),
    [
        ("2.10", "-2.10"),
        ("2.101", "-2.11"),
        ("2.105", "-2.11"),
        ("2.1099", "-2.11"),
        ("0.004", "-0.01"),
        ("0", "-0.01"),  # never a zero-priced (or credit) closing order
        ("-0.50", "-0.01"),
        ("3", "-3.00"),
    ],
)
def test_debits_round_up_to_the_tick(debit: str, price: str) -> None:
    assert debit_limit(D(debit)) == D(price)


def test_non_finite_debit_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        debit_limit(D("NaN"))


# --- stop loss ---------------------------------------------------------------------------


def test_stop_loss_triggers_exactly_at_twice_the_entry_credit() -> None:
    at = valued(("3.00", "3.10"), ("0.90", "1.00"))  # mid 3.05 - 0.95 = 2.10
    assert at.closing_cost_mid == D("2.10")
    assert stop_loss_triggered(spread(entry="1.05"), at)
    below = valued(("3.00", "3.09"), ("0.90", "1.00"))  # 2.095
    assert not stop_loss_triggered(spread(entry="1.05"), below)


def test_no_stop_loss_without_a_positive_entry_credit() -> None:
    value = valued(("3.00", "3.10"), ("0.90", "1.00"), entry="0")
    assert not stop_loss_triggered(spread(entry="0"), value)
    assert plan_stop_loss(POSITION, spread(entry="0"), value, None) is None


def test_stop_loss_cancels_the_target_and_closes_at_the_natural() -> None:
    value = valued(("3.00", "3.10"), ("0.90", "1.00"))  # natural 3.10 - 0.90 = 2.20
    decision = plan_stop_loss(POSITION, spread(entry="1.05"), value, TARGET)
    assert decision is not None
    assert decision.purpose is OrderPurpose.STOP_LOSS
    assert decision.limit_price == D("-2.20")
    assert decision.replaces_order_id == TARGET.order_id
    assert decision.time_in_force is TimeInForce.GTC
    assert [(leg.symbol, leg.action, leg.quantity) for leg in decision.legs] == [
        (SHORT_PUT, OrderAction.BUY_TO_CLOSE, 1),
        (LONG_PUT, OrderAction.SELL_TO_CLOSE, 1),
    ]
    assert decision.reason.startswith("closing cost 2.10 >= 2 x entry credit 1.05")
    event = as_event(decision.event_fields())
    assert event.limit_price == D("-2.20")


def test_stop_loss_natural_is_rounded_up_and_capped_at_the_width() -> None:
    odd = valued(("3.00", "3.105"), ("0.90", "1.00"))
    decision = plan_stop_loss(POSITION, spread(entry="1.05"), odd, TARGET)
    assert decision is not None
    assert decision.limit_price == D("-2.21")
    wide = valued(("3.00", "4.50"), ("0.90", "1.00"))  # natural 3.60 > width 3
    decision = plan_stop_loss(POSITION, spread(entry="1.05"), wide, None)
    assert decision is not None
    assert decision.limit_price == D("-3.00")
    assert decision.replaces_order_id is None


def test_stop_loss_supersedes_a_time_exit_but_not_a_stop_or_manual_exit() -> None:
    value = valued(("3.00", "3.10"), ("0.90", "1.00"))
    time_exit = WorkingExit(UUID(int=2), OrderPurpose.TIME_EXIT, D("-1.05"))
    decision = plan_stop_loss(POSITION, spread(), value, time_exit)
    assert decision is not None
    assert decision.replaces_order_id == time_exit.order_id
    for purpose in (OrderPurpose.STOP_LOSS, OrderPurpose.MANUAL_EXIT):
        working = WorkingExit(UUID(int=3), purpose, D("-2.20"))
        assert plan_stop_loss(POSITION, spread(), value, working) is None


def test_untriggered_stop_is_no_decision() -> None:
    value = valued(("1.50", "1.60"), ("0.90", "1.00"))
    assert plan_stop_loss(POSITION, spread(), value, TARGET) is None


def test_stop_loss_ids_are_deterministic() -> None:
    value = valued(("3.00", "3.10"), ("0.90", "1.00"))
    first = plan_stop_loss(POSITION, spread(), value, TARGET)
    again = plan_stop_loss(POSITION, spread(), value, TARGET)
    assert first is not None
    assert again is not None
    assert first.order_id == again.order_id != TARGET.order_id


class TestStopReprice:
    stop = WorkingExit(UUID(int=4), OrderPurpose.STOP_LOSS, D("-2.20"))

    def test_same_natural_is_left_alone(self) -> None:
        assert stop_loss_reprice_price(spread(), D("-2.20"), D("2.20")) is None
        assert stop_loss_reprice_price(spread(), D("-2.20"), D("2.195")) is None  # rounds up

    def test_new_natural_either_way_is_a_replacement(self) -> None:
        assert stop_loss_reprice_price(spread(), D("-2.20"), D("2.35")) == D("-2.35")
        assert stop_loss_reprice_price(spread(), D("-2.20"), D("2.05")) == D("-2.05")
        assert stop_loss_reprice_price(spread(), D("-2.20"), D("5")) == D("-3.00")

    def test_reprice_replaces_the_working_stop(self) -> None:
        value = valued(("3.20", "3.30"), ("0.90", "0.95"))  # natural 2.40
        decision = reprice_stop_loss(POSITION, spread(), value, self.stop)
        assert decision is not None
        assert decision.limit_price == D("-2.40")
        assert decision.replaces_order_id == self.stop.order_id
        assert decision.reason == "stop loss re-priced to the natural closing debit 2.40 (was 2.20)"
        following = WorkingExit(decision.order_id, OrderPurpose.STOP_LOSS, decision.limit_price)
        assert reprice_stop_loss(POSITION, spread(), value, following) is None

    def test_only_a_stop_is_repriced(self) -> None:
        value = valued(("3.20", "3.30"), ("0.90", "0.95"))
        with pytest.raises(ValueError, match="not a stop loss"):
            reprice_stop_loss(POSITION, spread(), value, TARGET)


# --- 7-DTE time exit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dte", "ceiling"),
    [
        (7, "1.05"),  # entry credit
        (6, "2.415"),  # 1.05 + 0.70 x 1.95
        (5, "2.61"),  # 1.05 + 0.80 x 1.95
        (4, "2.805"),  # 1.05 + 0.90 x 1.95
        (3, "3"),  # full width
        (1, "3"),
        (0, "3"),
    ],
)
def test_time_exit_ladder(dte: int, ceiling: str) -> None:
    assert time_exit_ceiling(spread(entry="1.05"), dte) == D(ceiling)


@pytest.mark.parametrize(("dte", "price"), [(7, "-1.05"), (6, "-2.42"), (4, "-2.81"), (3, "-3.00")])
def test_time_exit_limit_is_the_ceiling_as_a_debit_rounded_up(dte: int, price: str) -> None:
    decision = plan_time_exit(POSITION, spread(entry="1.05"), dte, TARGET)
    assert decision is not None
    assert decision.purpose is OrderPurpose.TIME_EXIT
    assert decision.limit_price == D(price)
    assert decision.replaces_order_id == TARGET.order_id
    assert as_event(decision.event_fields()).purpose is OrderPurpose.TIME_EXIT


def test_time_exit_reasons_name_the_rule() -> None:
    seven = plan_time_exit(POSITION, spread(entry="1.05"), 7, None)
    six = plan_time_exit(POSITION, spread(entry="1.05"), 6, None)
    three = plan_time_exit(POSITION, spread(entry="1.05"), 3, None)
    assert seven is not None
    assert six is not None
    assert three is not None
    assert seven.reason == ("7 DTE time exit: close at a debit of at most 1.05 (entry credit 1.05)")
    assert six.reason == (
        "6 DTE time exit: close at a debit of at most 2.42 "
        "(entry credit 1.05 + 70 % of max loss 1.95)"
    )
    assert three.reason.endswith("(full width 3.00)")


def test_no_time_exit_before_seven_dte() -> None:
    assert plan_time_exit(POSITION, spread(), 8, TARGET) is None
    with pytest.raises(ValueError, match="8 DTE"):
        time_exit_ceiling(spread(), 8)


def test_time_exit_ceilings_never_exceed_the_width() -> None:
    odd = spread(entry="3.50")  # entry above the width: bad input, still capped
    assert time_exit_ceiling(odd, 7) == D(3)
    assert time_exit_ceiling(spread(entry="-0.20"), 7) == D("-0.20")
    decision = plan_time_exit(POSITION, spread(entry="-0.20"), 7, None)
    assert decision is not None
    assert decision.limit_price == D("-0.01")


def test_time_exit_reprices_daily_and_not_twice_a_day() -> None:
    first = plan_time_exit(POSITION, spread(), 7, TARGET)
    assert first is not None
    working = WorkingExit(first.order_id, OrderPurpose.TIME_EXIT, first.limit_price)
    assert plan_time_exit(POSITION, spread(), 7, working) is None  # a re-run the same day
    next_day = plan_time_exit(POSITION, spread(), 6, working)
    assert next_day is not None
    assert next_day.replaces_order_id == first.order_id
    assert next_day.order_id not in (first.order_id, TARGET.order_id)
    assert next_day.limit_price == D("-2.42")


def test_time_exit_leaves_a_stop_or_a_manual_exit_working() -> None:
    for purpose in (OrderPurpose.STOP_LOSS, OrderPurpose.MANUAL_EXIT):
        working = WorkingExit(UUID(int=5), purpose, D("-2.20"))
        assert plan_time_exit(POSITION, spread(), 5, working) is None


def test_daily_run_is_15_45_new_york_and_12_45_on_half_days() -> None:
    regular = daily_run_time(date(2026, 2, 13))
    assert regular is not None
    assert regular.astimezone(NEW_YORK).time().isoformat() == "15:45:00"
    assert regular == datetime(2026, 2, 13, 20, 45, tzinfo=UTC)
    half = daily_run_time(date(2025, 11, 28))  # the day after Thanksgiving: close 13:00
    assert half is not None
    assert half.astimezone(NEW_YORK).time().isoformat() == "12:45:00"
    summer = daily_run_time(date(2026, 7, 10))  # EDT: 19:45 UTC
    assert summer == datetime(2026, 7, 10, 19, 45, tzinfo=UTC)


def test_no_run_on_a_day_without_a_session() -> None:
    assert daily_run_time(date(2026, 2, 14)) is None  # Saturday
    assert daily_run_time(date(2026, 2, 16)) is None  # Presidents' Day


def test_latest_run_day_names_the_run_that_is_due() -> None:
    friday = date(2026, 2, 13)
    assert latest_run_day(ny(friday, 15, 44)) == date(2026, 2, 12)
    assert latest_run_day(ny(friday, 15, 45)) == friday
    # Start-up on the holiday Monday: the latest due run was Friday's.
    assert latest_run_day(ny(date(2026, 2, 16), 16, 0)) == friday
    assert latest_run_day(ny(date(2025, 11, 28), 12, 45)) == date(2025, 11, 28)
    assert latest_run_day(ny(date(2025, 11, 28), 12, 44)) == date(2025, 11, 26)


def test_next_run_after() -> None:
    assert next_run_after(ny(date(2026, 2, 13), 15, 45)) == ny(date(2026, 2, 17), 15, 45)
    assert next_run_after(ny(date(2025, 11, 27), 9, 0)) == ny(date(2025, 11, 28), 12, 45)


def test_plan_time_exits_closes_every_open_spread_of_a_due_position() -> None:
    spreads = trident()
    working = {SpreadKind.PUT_SPREAD_1: TARGET}
    at_run = ny(date(2026, 2, 13), 15, 45)  # 7 DTE
    decisions = plan_time_exits(POSITION, EXPIRATION, spreads, working, at_run)
    assert [d.spread_kind for d in decisions] == [s.kind for s in spreads]
    assert [d.limit_price for d in decisions] == [D("-1.05"), D("-1.05"), D("-0.80")]
    assert decisions[0].replaces_order_id == TARGET.order_id


def test_plan_time_exits_at_start_up_uses_the_missed_run() -> None:
    # Start-up on Tuesday 2026-02-17 at 10:00: the last due run was Friday's (7 DTE),
    # not today's 15:45 (3 DTE), so the 7-DTE ceiling applies until then.
    startup = ny(date(2026, 2, 17), 10, 0)
    decisions = plan_time_exits(POSITION, EXPIRATION, trident()[:1], {}, startup)
    assert [d.limit_price for d in decisions] == [D("-1.05")]
    at_run = ny(date(2026, 2, 17), 15, 45)
    decisions = plan_time_exits(POSITION, EXPIRATION, trident()[:1], {}, at_run)
    assert [d.limit_price for d in decisions] == [D("-3.00")]


def test_plan_time_exits_before_seven_dte_is_nothing() -> None:
    early = ny(date(2026, 2, 12), 15, 45)  # 8 DTE
    assert plan_time_exits(POSITION, EXPIRATION, trident(), {}, early) == ()


# --- building exits ----------------------------------------------------------------------


def test_exit_decision_refuses_non_exits_and_bad_prices() -> None:
    with pytest.raises(InvalidExit, match="purpose"):
        exit_decision(POSITION, spread(), OrderPurpose.OPEN, D("-1.00"), "x", None)
    with pytest.raises(InvalidExit, match="tick"):
        exit_decision(POSITION, spread(), OrderPurpose.STOP_LOSS, D("-1.005"), "x", None)
    with pytest.raises(InvalidExit, match="debit"):
        exit_decision(POSITION, spread(), OrderPurpose.STOP_LOSS, D("0"), "x", None)


def test_exit_legs_carry_the_spread_quantity() -> None:
    decision = plan_time_exit(POSITION, spread(quantity=3), 7, None)
    assert decision is not None
    assert {leg.quantity for leg in decision.legs} == {3}


# --- closing fills -----------------------------------------------------------------------


def fill(symbol: str, action: OrderAction, price: str, quantity: int = 1, n: int = 0) -> LegFill:
    return LegFill(
        symbol=symbol,
        action=action,
        quantity=quantity,
        fill_price=D(price),
        broker_fill_id=f"{symbol.strip()}-{n}",
        filled_at=datetime(2026, 1, 20, 16, 0, tzinfo=UTC),
    )


def test_profit_target_fill_realizes_the_spread_only() -> None:
    fills = [
        fill(SHORT_PUT, OrderAction.BUY_TO_CLOSE, "1.20"),
        fill(LONG_PUT, OrderAction.SELL_TO_CLOSE, "0.57"),
    ]
    closed = close_by_fill(spread(entry="1.05"), OrderPurpose.PROFIT_TARGET, UUID(int=9), fills)
    assert closed.exit_debit == D("0.63")
    assert closed.realized_pnl == D("42.00")  # 40 % of 105
    assert closed.reason is CloseReason.PROFIT_TARGET
    event = SpreadClosed(
        occurred_at=datetime(2026, 1, 20, 16, 0, tzinfo=UTC),
        producer="position_monitor",
        account_id=ACCOUNT,
        correlation_id=POSITION,
        position_id=POSITION,
        **closed.event_fields(),
    )
    assert event.spread_kind is SpreadKind.PUT_SPREAD_1


def test_fill_in_pieces_is_averaged_per_leg() -> None:
    fills = [
        fill(SHORT_PUT, OrderAction.BUY_TO_CLOSE, "2.10", 1, 0),
        fill(SHORT_PUT, OrderAction.BUY_TO_CLOSE, "2.20", 1, 1),
        fill(LONG_PUT, OrderAction.SELL_TO_CLOSE, "0.05", 2, 0),
    ]
    closed = close_by_fill(
        spread(entry="1.05", quantity=2), OrderPurpose.STOP_LOSS, UUID(int=9), fills
    )
    assert closed.exit_debit == D("2.10")  # 2.15 - 0.05
    assert closed.realized_pnl == D("-210.00")
    assert closed.reason is CloseReason.STOP_LOSS


def test_incomplete_or_opening_fills_close_nothing() -> None:
    partial = [
        fill(SHORT_PUT, OrderAction.BUY_TO_CLOSE, "2.10", 1),
        fill(LONG_PUT, OrderAction.SELL_TO_CLOSE, "0.05", 1),
    ]
    with pytest.raises(InvalidFill, match="1 of 2"):
        close_by_fill(spread(quantity=2), OrderPurpose.STOP_LOSS, UUID(int=9), partial)
    opening = [
        fill(SHORT_PUT, OrderAction.SELL_TO_OPEN, "2.10"),
        fill(LONG_PUT, OrderAction.SELL_TO_CLOSE, "0.05"),
    ]
    with pytest.raises(InvalidFill, match="BUY_TO_CLOSE"):
        close_by_fill(spread(), OrderPurpose.STOP_LOSS, UUID(int=9), opening)
    with pytest.raises(InvalidFill, match="closes no spread"):
        close_by_fill(spread(), OrderPurpose.OPEN, UUID(int=9), partial)


def test_position_realized_pnl_sums_the_spreads() -> None:
    assert position_realized_pnl([D("42.00"), D("63.00"), D("-210.00")]) == D("-105.00")
    assert position_realized_pnl([]) == Decimal(0)


def test_run_time_lookback_handles_long_closures() -> None:
    # Start-up one week after the last session still finds it.
    assert latest_run_day(ny(date(2026, 2, 13), 15, 45) + timedelta(days=6)) is not None
