"""Closing fills: which spreads the folded fills close, and what the closer publishes."""

from __future__ import annotations

from uuid import uuid4

import structlog
from prometheus_client import CollectorRegistry

from libs.contracts.envelope import Event
from libs.contracts.positions import CloseReason, PositionClosed, SpreadClosed
from services.position_monitor.closing import ClosePlan, FillCloser, plan_closes
from services.position_monitor.event_ids import position_closed_id, spread_closed_id
from services.position_monitor.metrics import MonitorCounters
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import ACCOUNT, POSITION
from tests.unit.position_monitor.fakes import (
    CALL,
    PS1,
    PS2,
    D,
    FakeShell,
    env,
    exit_filled,
    filled,
    fold,
    opened,
    placed,
    submitted,
)


def plan_of(state: MonitorState) -> ClosePlan:
    found = state.position(ACCOUNT, POSITION)
    assert found is not None
    return plan_closes(state, found)


def test_nothing_filled_closes_nothing() -> None:
    state = fold(opened(), placed(uuid4()))
    plan = plan_of(state)
    assert plan.closes == ()
    assert plan.position_closed is False


def test_a_complete_fill_closes_its_spread_only() -> None:
    order = uuid4()
    state = fold(opened(), *exit_filled(order, PS1, short="0.70", long="0.10"))
    plan = plan_of(state)
    (close,) = plan.closes
    assert (close.spread_kind, close.reason, close.closing_order_id) == (
        PS1,
        CloseReason.PROFIT_TARGET,
        order,
    )
    # (1.05 - (0.70 - 0.10)) x 100
    assert close.realized_pnl == D(45)
    assert plan.realized == (D(45),)
    assert plan.position_closed is False


def test_the_last_fill_closes_the_position_with_every_spreads_pnl() -> None:
    events: list[Event] = [opened()]
    for kind in (PS1, PS2, CALL):
        events += exit_filled(uuid4(), kind, short="0.50", long="0.10")
    plan = plan_of(fold(*events))
    assert [c.spread_kind for c in plan.closes] == [PS1, PS2, CALL]
    assert plan.position_closed is True
    assert sum(plan.realized) == D(65) + D(65) + D(40)


def test_fills_that_do_not_close_the_spread_book_nothing() -> None:
    order = uuid4()
    state = fold(opened(), placed(order), submitted(order))
    state.apply(filled(order, PS1, qty=2))  # two contracts of a one-lot spread
    plan = plan_of(state)
    assert plan.closes == ()
    (unclosing,) = plan.unclosing
    assert unclosing.order.order_id == order
    assert plan.position_closed is False


async def test_the_closer_publishes_the_spreads_then_the_position_closed() -> None:
    orders = {kind: uuid4() for kind in (PS1, PS2, CALL)}
    events: list[Event] = [opened()]
    for kind, order in orders.items():
        events += exit_filled(order, kind, short="0.50", long="0.10")
    state = fold(*events)
    shell = FakeShell(state)
    counters = MonitorCounters.register(CollectorRegistry())
    closer = FillCloser(shell, state, counters, structlog.get_logger())

    await closer.close_filled()

    (batch,) = shell.published
    *spreads, position = batch
    assert [type(e) for e in spreads] == [SpreadClosed] * 3
    assert [e.event_id for e in spreads] == [spread_closed_id(POSITION, k) for k in orders]
    assert isinstance(position, PositionClosed)
    assert position.event_id == position_closed_id(POSITION)
    assert position.realized_pnl == D(170)
    assert position.causation_id == spreads[-1].event_id
    assert counters.closed.labels("position_monitor", "PROFIT_TARGET")._value.get() == 3
    # Folded: the next pass finds nothing left to book.
    await closer.close_filled()
    assert len(shell.published) == 1


async def test_a_position_whose_spreads_were_all_booked_still_closes() -> None:
    # A crash between the last SpreadClosed and PositionClosed.
    events: list[Event] = [opened()]
    for kind in (PS1, PS2, CALL):
        events += exit_filled(uuid4(), kind, short="0.50", long="0.10")
    state = fold(*events)
    shell = FakeShell(state)
    closer = FillCloser(
        shell, state, MonitorCounters.register(CollectorRegistry()), structlog.get_logger()
    )
    for close in plan_of(state).closes:
        state.apply(SpreadClosed(**env(), position_id=POSITION, **close.event_fields()))

    await closer.close_filled()

    (batch,) = shell.published
    (closed,) = batch
    assert isinstance(closed, PositionClosed)
    assert closed.realized_pnl == D(170)
