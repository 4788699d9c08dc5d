"""Queries: one position, and which positions a list shows in which order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from libs.contracts.commands import GetPosition, GetPositions
from libs.contracts.errors import NotFound
from libs.contracts.positions import (
    AttentionReason,
    HeldLeg,
    PositionAttentionCleared,
    PositionClosed,
    PositionNeedsAttention,
    PositionStatus,
)
from services.position_monitor.queries import Queries, listed, position_views, record_of
from tests.unit.position_monitor.builders import ACCOUNT, NOW, POSITION, SHORT_PUT
from tests.unit.position_monitor.fakes import env, fold, opened


def test_record_of_an_unknown_position_is_not_found() -> None:
    state = fold(opened())
    assert record_of(state, ACCOUNT, POSITION).position_id == POSITION
    with pytest.raises(NotFound):
        record_of(state, ACCOUNT, uuid4())
    with pytest.raises(NotFound):
        record_of(state, "5WT00002", POSITION)  # another account's position


def test_lists_show_open_positions_unless_closed_ones_are_asked_for() -> None:
    closed = uuid4()
    state = fold(
        opened(),
        opened(closed, occurred_at=NOW - timedelta(days=1)),
        PositionClosed(**env(), position_id=closed, realized_pnl=Decimal(10)),
    )
    book = state.book(ACCOUNT)
    assert [r.position_id for r in listed(book, False)] == [POSITION]
    assert {r.position_id for r in listed(book, True)} == {POSITION, closed}
    views = position_views(state, ACCOUNT, True)
    assert [v.position_id for v in views] == [POSITION, closed]  # newest first
    assert views[1].status is PositionStatus.CLOSED


def test_a_flagged_opening_is_listed_from_its_flag() -> None:
    flagged = uuid4()
    state = fold(
        opened(),
        PositionNeedsAttention(
            **env(occurred_at=NOW + timedelta(minutes=1)),
            position_id=flagged,
            underlying="SPY",
            reason=AttentionReason.PARTIAL_FILL,
            message="partly filled",
            app_managed=False,
            held_legs=(HeldLeg(symbol=SHORT_PUT, quantity=-1),),
        ),
    )
    assert [v.position_id for v in position_views(state, ACCOUNT, False)] == [flagged, POSITION]


async def test_the_queries_answer_from_the_state() -> None:
    state = fold(opened())
    queries = Queries(state)
    one = await queries.get_position(GetPosition(account_id=ACCOUNT, position_id=POSITION))
    assert one.position.position_id == POSITION
    many = await queries.get_positions(GetPositions(account_id=ACCOUNT))
    assert [v.position_id for v in many.positions] == [POSITION]
    none = await queries.get_positions(GetPositions(account_id="5WT00002"))
    assert none.positions == ()


def test_a_flag_cleared_before_any_opening_leaves_nothing_to_list() -> None:
    flagged = uuid4()
    state = fold(
        PositionNeedsAttention(
            **env(),
            position_id=flagged,
            underlying="SPY",
            reason=AttentionReason.PARTIAL_FILL,
            message="partly filled",
            app_managed=False,
            held_legs=(HeldLeg(symbol=SHORT_PUT, quantity=-1),),
        ),
        PositionAttentionCleared(**env(), position_id=flagged, message="filled"),
    )
    assert flagged in state.book(ACCOUNT).positions
    assert listed(state.book(ACCOUNT), True) == []
