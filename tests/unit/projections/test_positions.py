"""The positions projection: opening, exits, valuations as carried, closes, attention."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from libs.contracts.envelope import Event, new_event_id
from libs.contracts.execution import OrderPurpose
from libs.contracts.positions import AttentionReason, CloseReason, PositionStatus
from libs.contracts.strategy import SpreadKind
from services.position_monitor.projection import POSITIONS, PositionBook, apply
from tests.integration.replay.scenario import (
    CALL_592,
    CALL_595,
    MAX_RISK,
    PUT_589,
    PUT_592,
    Script,
)

ACCOUNT = "5WT00001"
ALL = tuple(SpreadKind)
QUOTES = {
    PUT_592: ("8.40", "8.50"),
    PUT_589: ("7.60", "7.70"),
    CALL_592: ("7.90", "8.00"),
    CALL_595: ("6.70", "6.80"),
}


def opened(s: Script) -> tuple[UUID, Event]:
    position_id = new_event_id()
    return position_id, s.position_opened(position_id, new_event_id(), new_event_id())


def test_an_opened_position_has_its_three_spreads() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    position = apply(PositionBook(), event).positions[position_id]
    assert position.status is PositionStatus.OPEN
    assert position.app_managed
    assert position.max_risk == MAX_RISK
    assert position.total_entry_credit == Decimal("3.70")
    assert [(r.spread.kind, r.spread.entry_credit, r.open) for r in position.spreads] == [
        (SpreadKind.PUT_SPREAD_1, Decimal("1.10"), True),
        (SpreadKind.PUT_SPREAD_2, Decimal("1.10"), True),
        (SpreadKind.CALL_SPREAD, Decimal("1.50"), True),
    ]


def test_each_spread_gets_its_profit_target_exit() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    exits = [s.profit_target(position_id, kind) for kind in SpreadKind]
    position = POSITIONS.fold([event, *exits]).positions[position_id]
    assert [(r.exit_order_id, r.exit_limit_price) for r in position.spreads] == [
        (exits[0].order_id, Decimal("-0.66")),
        (exits[1].order_id, Decimal("-0.44")),
        (exits[2].order_id, Decimal("-0.75")),
    ]
    assert all(r.exit_purpose is OrderPurpose.PROFIT_TARGET for r in position.spreads)


def test_a_valuation_is_taken_exactly_as_the_event_carries_it() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    update = s.updated(position_id, QUOTES, ALL, dte=40)
    position = POSITIONS.fold([event, update]).positions[position_id]
    assert position.unrealized_pnl == update.unrealized_pnl == Decimal(90)
    assert position.marks == update.marks
    assert position.dte == 40
    assert position.valued_at == update.occurred_at
    assert position.spread_marks == update.spreads
    put_spread = position.spread_marks[0]
    # 1.10 entry, 8.45 - 7.65 to close at mid: 30 dollars of unrealised profit.
    assert (put_spread.closing_cost_mid, put_spread.closing_cost_natural) == (
        Decimal("0.80"),
        Decimal("0.90"),
    )
    assert put_spread.unrealized_pnl == Decimal(30)


def test_an_older_valuation_arriving_late_is_ignored() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    older = s.updated(position_id, QUOTES, ALL, dte=40)
    newer = s.updated(position_id, {**QUOTES, PUT_592: ("8.30", "8.40")}, ALL, dte=40)
    book = POSITIONS.fold([event, newer])
    assert apply(book, older) is book
    assert apply(book, newer) is book


def test_two_valuations_at_one_instant_both_apply_once() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    first = s.updated(position_id, QUOTES, ALL, dte=40)
    second = s.updated(position_id, {**QUOTES, PUT_592: ("8.30", "8.40")}, ALL, dte=40)
    second = second.model_copy(update={"occurred_at": first.occurred_at})
    book = POSITIONS.fold([event, first, second])
    assert book.positions[position_id].unrealized_pnl == second.unrealized_pnl
    assert apply(book, first) is book


def test_a_closed_spread_keeps_its_realised_pnl() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    exit_ = s.profit_target(position_id, SpreadKind.PUT_SPREAD_2)
    closed = s.spread_closed(
        position_id, SpreadKind.PUT_SPREAD_2, CloseReason.PROFIT_TARGET, exit_.order_id, "0.44"
    )
    position = POSITIONS.fold(
        [event, exit_, s.updated(position_id, QUOTES, ALL, 40), closed]
    ).positions[position_id]
    spread = position.spread(SpreadKind.PUT_SPREAD_2)
    assert spread is not None
    assert not spread.open
    assert spread.realized_pnl == Decimal(66)
    assert [m.kind for m in position.spread_marks] == [
        SpreadKind.PUT_SPREAD_1,
        SpreadKind.CALL_SPREAD,
    ]
    assert position.realized_pnl == Decimal(66)
    assert position.status is PositionStatus.OPEN


def test_a_closed_position_takes_the_events_realised_pnl() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    position = POSITIONS.fold(
        [
            event,
            s.updated(position_id, QUOTES, ALL, 40),
            s.position_closed(position_id, Decimal(-74)),
        ]
    ).positions[position_id]
    assert position.status is PositionStatus.CLOSED
    assert position.realized_pnl == Decimal(-74)
    assert position.unrealized_pnl is None


def test_closing_a_spread_twice_is_an_anomaly() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    order_id = new_event_id()
    first = s.spread_closed(
        position_id, SpreadKind.CALL_SPREAD, CloseReason.STOP_LOSS, order_id, "3.10"
    )
    second = s.spread_closed(
        position_id, SpreadKind.CALL_SPREAD, CloseReason.EXTERNAL, order_id, "3.00"
    )
    position = POSITIONS.fold([event, first, second]).positions[position_id]
    spread = position.spread(SpreadKind.CALL_SPREAD)
    assert spread is not None
    assert spread.close_reason is CloseReason.STOP_LOSS
    assert [a.event_id for a in position.anomalies] == [second.event_id]


def test_a_partly_filled_opening_is_flagged_before_it_opens_and_cleared_after() -> None:
    s = Script(ACCOUNT)
    position_id = new_event_id()
    flagged = apply(PositionBook(), s.needs_attention(position_id, new_event_id()))
    position = flagged.positions[position_id]
    assert position.needs_attention
    assert not position.app_managed
    assert position.opened_at is None
    assert position.attention is not None
    assert position.attention.reason is AttentionReason.PARTIAL_FILL

    book = POSITIONS.fold(
        [
            s.position_opened(position_id, new_event_id(), new_event_id()),
            s.attention_cleared(position_id),
        ],
        flagged,
    )
    position = book.positions[position_id]
    assert not position.needs_attention
    assert position.app_managed
    assert position.attention is None


def test_events_for_an_unknown_position_are_kept_on_the_book() -> None:
    s = Script(ACCOUNT)
    stray = s.updated(new_event_id(), QUOTES, ALL, 40)
    book = apply(PositionBook(), stray)
    assert book.positions == {}
    assert [a.event_id for a in book.anomalies] == [stray.event_id]
    assert apply(book, stray) is book


def test_redelivered_events_change_nothing() -> None:
    s = Script(ACCOUNT)
    position_id, event = opened(s)
    exit_ = s.profit_target(position_id, SpreadKind.PUT_SPREAD_1)
    events = [
        s.needs_attention(position_id, new_event_id()),
        event,
        s.attention_cleared(position_id),
        exit_,
        s.updated(position_id, QUOTES, ALL, 40),
        s.spread_closed(
            position_id, SpreadKind.PUT_SPREAD_1, CloseReason.PROFIT_TARGET, exit_.order_id, "0.66"
        ),
        s.position_closed(position_id, Decimal(44)),
    ]
    book = POSITIONS.fold(events)
    for redelivered in events:
        assert apply(book, redelivered) is book
