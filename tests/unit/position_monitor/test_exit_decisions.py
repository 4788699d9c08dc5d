"""The monitor's exits as the shell decides them: stops after a valuation, the daily run,
ClosePosition, and publishing only what is not decided yet."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
import structlog
from prometheus_client import CollectorRegistry

from libs.contracts.commands import ClosePosition, Command, GetQuotes, QuotesReply, Reply
from libs.contracts.errors import InvalidState, MarketDataStaleError, NotFound
from libs.contracts.execution import OrderPurpose
from libs.contracts.market import Quote
from libs.contracts.positions import (
    AttentionReason,
    CloseReason,
    ExitOrderPlaced,
    PositionNeedsAttention,
    SpreadClosed,
)
from libs.runtime.clock import NEW_YORK, ManualClock
from services.position_monitor.core import PositionValuation, value_position
from services.position_monitor.event_ids import exit_placed_id
from services.position_monitor.exits import (
    DailyRun,
    Exits,
    ManualClose,
    closable_spreads,
    leg_symbols,
    manual_exits,
    reprice_due,
    stop_loss_decisions,
    time_exit_inputs,
)
from services.position_monitor.metrics import MonitorCounters
from services.position_monitor.projection import PositionRecord
from services.position_monitor.quotes import Quotes
from services.position_monitor.settings import MonitorSettings
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    LONG_CALL,
    LONG_PUT,
    NOW,
    POSITION,
    SHORT_CALL,
    SHORT_PUT,
    quote,
    quotes,
)
from tests.unit.position_monitor.fakes import (
    CALL,
    PS1,
    PS2,
    D,
    FakeShell,
    env,
    exit_filled,
    fold,
    opened,
    placed,
    submitted,
)

#: Puts at 2.20 to close at mid (2 x 1.05 = 2.10: the stop triggers), natural 2.30.
LOSING = quotes(
    quote(SHORT_PUT, "2.60", "2.70"),
    quote(LONG_PUT, "0.40", "0.50"),
    quote(SHORT_CALL, "0.30", "0.35"),
    quote(LONG_CALL, "0.10", "0.15"),
)
#: 7 calendar days before expiration, at the daily run (15:45 New York).
RUN_AT = datetime(2026, 2, 13, 15, 45, tzinfo=NEW_YORK)


def position(state: MonitorState) -> PositionRecord:
    found = state.position(ACCOUNT, POSITION)
    assert found is not None
    return found


def valued(state: MonitorState, market: dict[str, Quote], now: datetime = NOW) -> PositionValuation:
    record = position(state)
    assert record.expiration is not None
    open_spreads = [s.spread for s in record.spreads if s.open]
    return value_position(open_spreads, record.expiration, market, now)


def exits_for(state: MonitorState, clock: ManualClock | None = None) -> tuple[Exits, FakeShell]:
    shell = FakeShell(state, clock)
    counters = MonitorCounters.register(CollectorRegistry())
    return Exits(shell, state, counters, structlog.get_logger()), shell


# --- stops after a valuation --------------------------------------------------------------


def test_a_losing_valuation_stops_each_triggered_spread_replacing_its_target() -> None:
    target = uuid4()
    state = fold(opened(), placed(target, PS1))
    decisions = stop_loss_decisions(state, position(state), valued(state, LOSING), NOW)
    assert [(d.spread_kind, d.purpose) for d in decisions] == [
        (PS1, OrderPurpose.STOP_LOSS),
        (PS2, OrderPurpose.STOP_LOSS),
    ]
    assert decisions[0].replaces_order_id == target
    assert decisions[1].replaces_order_id is None
    assert decisions[0].limit_price == D("-2.30")


def test_a_spread_closed_by_a_fill_not_booked_yet_gets_no_stop() -> None:
    state = fold(opened(), *exit_filled(uuid4(), PS1))
    decisions = stop_loss_decisions(state, position(state), valued(state, LOSING), NOW)
    assert [d.spread_kind for d in decisions] == [PS2]


def test_a_working_stop_is_repriced_a_minute_after_it_was_decided() -> None:
    stop = uuid4()
    state = fold(opened(), placed(stop, PS1, OrderPurpose.STOP_LOSS, limit="-2.00", at=NOW))
    early = NOW + timedelta(seconds=59)
    late = NOW + timedelta(minutes=1)
    ps1 = [
        d
        for d in stop_loss_decisions(state, position(state), valued(state, LOSING, early), early)
        if d.spread_kind is PS1
    ]
    assert ps1 == []
    (repriced,) = [
        d
        for d in stop_loss_decisions(state, position(state), valued(state, LOSING, late), late)
        if d.spread_kind is PS1
    ]
    assert (repriced.limit_price, repriced.replaces_order_id) == (D("-2.30"), stop)


def test_reprice_due_needs_the_decision_folded_and_a_minute() -> None:
    state = fold(opened(), placed(uuid4(), PS1, OrderPurpose.STOP_LOSS, at=NOW))
    (order,) = state.exits.values()
    assert reprice_due(None, NOW + timedelta(hours=1)) is False
    assert reprice_due(order, NOW + timedelta(seconds=59)) is False
    assert reprice_due(order, NOW + timedelta(seconds=60)) is True


# --- the daily run -----------------------------------------------------------------------


def test_time_exit_inputs_leave_out_spreads_closed_by_a_fill() -> None:
    target = uuid4()
    state = fold(opened(), placed(target, CALL), *exit_filled(uuid4(), PS1))
    spreads, working = time_exit_inputs(state, position(state))
    assert [s.kind for s in spreads] == [PS2, CALL]
    assert working[CALL].order_id == target
    assert PS1 not in working  # its exit filled: not working


async def test_the_daily_run_places_time_exits_once_per_run_day() -> None:
    state = fold(opened())
    exits, shell = exits_for(state, ManualClock(RUN_AT))
    daily = DailyRun(state, exits, structlog.get_logger())
    await daily.run_if_due(RUN_AT)
    placed_now = [e for e in shell.events() if isinstance(e, ExitOrderPlaced)]
    assert {e.spread_kind for e in placed_now} == {PS1, PS2, CALL}
    assert {e.purpose for e in placed_now} == {OrderPurpose.TIME_EXIT}
    assert all("7 DTE" in e.reason for e in placed_now)
    await daily.run_if_due(RUN_AT + timedelta(minutes=5))  # same run day: done already
    assert len(shell.events()) == 3


async def test_the_daily_run_before_seven_dte_decides_nothing() -> None:
    state = fold(opened())
    exits, shell = exits_for(state)
    daily = DailyRun(state, exits, structlog.get_logger())
    await daily.run_if_due(NOW)
    assert shell.events() == []


# --- ClosePosition -------------------------------------------------------------------------


def test_closable_spreads_are_the_asked_open_ones() -> None:
    state = fold(opened(), *exit_filled(uuid4(), PS1))
    state.apply(
        SpreadClosed(
            **env(),
            position_id=POSITION,
            spread_kind=CALL,
            reason=CloseReason.EXPIRED,
            realized_pnl=Decimal(0),
        )
    )
    record = position(state)
    assert [s.spread.kind for s in closable_spreads(record, ())] == [PS1, PS2]
    assert [s.spread.kind for s in closable_spreads(record, [PS2, CALL])] == [PS2]
    with pytest.raises(InvalidState, match="no such open spread"):
        closable_spreads(record, [CALL])


def test_a_position_not_app_managed_is_closed_at_the_broker() -> None:
    state = fold(
        opened(),
        PositionNeedsAttention(
            **env(),
            position_id=POSITION,
            underlying="SPY",
            reason=AttentionReason.GONE_AT_BROKER,
            message="gone",
            app_managed=False,
            active=False,
        ),
    )
    with pytest.raises(InvalidState, match="close it at the broker"):
        closable_spreads(position(state), ())


def test_leg_symbols_once_each_sorted() -> None:
    record = position(fold(opened()))
    assert leg_symbols(record.spreads) == sorted({SHORT_PUT, LONG_PUT, SHORT_CALL, LONG_CALL})


def test_manual_exits_at_the_natural_and_kept_when_asked_twice() -> None:
    manual = uuid4()
    state = fold(opened(), placed(manual, PS2, OrderPurpose.MANUAL_EXIT), submitted(manual, PS2))
    record = position(state)
    kept, decisions = manual_exits(state, record, record.spreads, LOSING, "alice")
    assert kept == [manual]
    assert [(d.spread_kind, d.purpose) for d in decisions] == [
        (PS1, OrderPurpose.MANUAL_EXIT),
        (CALL, OrderPurpose.MANUAL_EXIT),
    ]
    assert decisions[0].limit_price == D("-2.30")  # short ask - long bid
    assert decisions[1].limit_price == D("-0.25")
    assert decisions[0].reason == "closed by alice at the natural closing debit 2.30"


def test_manual_exits_need_every_leg_quoted() -> None:
    state = fold(opened())
    record = position(state)
    with pytest.raises(MarketDataStaleError):
        manual_exits(state, record, record.spreads, {}, None)


# --- publishing ----------------------------------------------------------------------------


async def test_place_publishes_only_decisions_not_taken_and_returns_every_id() -> None:
    state = fold(opened(), placed(uuid4(), PS1))
    exits, shell = exits_for(state)
    record = position(state)
    decisions = stop_loss_decisions(state, record, valued(state, LOSING), NOW)
    ids = await exits.place(ACCOUNT, decisions)
    assert ids == [d.order_id for d in decisions]
    assert [e.event_id for e in shell.events()] == [exit_placed_id(i) for i in ids]
    again = await exits.place(ACCOUNT, decisions)  # folded: decided already
    assert again == ids
    assert shell.published[-1] == []
    assert exits._counters.exits.labels("position_monitor", "STOP_LOSS")._value.get() == 2


async def test_close_position_answers_with_the_exit_order_ids() -> None:
    state = fold(opened())
    exits, shell = exits_for(state)

    def answer(command: Command) -> Reply:
        assert isinstance(command, GetQuotes)
        return QuotesReply(quotes=tuple(LOSING[s] for s in command.symbols))

    shell.fake_bus.answer = answer
    market = Quotes(shell, state, MonitorSettings(), structlog.get_logger())
    manual = ManualClose(state, market, exits, asyncio.Lock())
    reply = await manual.close_position(
        ClosePosition(account_id=ACCOUNT, position_id=POSITION, spreads=(CALL,))
    )
    (order_id,) = reply.exit_order_ids
    (event,) = shell.events()
    assert isinstance(event, ExitOrderPlaced)
    assert (event.order_id, event.purpose) == (order_id, OrderPurpose.MANUAL_EXIT)
    with pytest.raises(NotFound):
        await manual.close_position(ClosePosition(account_id=ACCOUNT, position_id=uuid4()))
