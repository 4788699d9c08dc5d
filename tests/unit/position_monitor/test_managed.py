"""Which positions the monitor decides for, and the options it asks quotes of."""

from __future__ import annotations

from uuid import uuid4

from libs.contracts.positions import (
    AttentionReason,
    CloseReason,
    PositionNeedsAttention,
    PositionStatus,
    SpreadClosed,
)
from libs.contracts.strategy import SpreadKind
from services.position_monitor.managed import managed_positions, option_symbols
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    LONG_CALL,
    LONG_PUT,
    POSITION,
    SHORT_CALL,
    SHORT_PUT,
)
from tests.unit.position_monitor.fakes import CALL, PS1, PS2, env, fold, opened


def flagged(reason: AttentionReason, *, app_managed: bool, active: bool) -> PositionNeedsAttention:
    return PositionNeedsAttention(
        **env(),
        position_id=POSITION,
        underlying="SPY",
        reason=reason,
        message="look",
        app_managed=app_managed,
        active=active,
    )


def test_an_opened_position_is_managed_with_both_legs_of_each_open_spread() -> None:
    state = fold(opened())
    managed = managed_positions(state)
    assert [(a, r.position_id) for a, r in managed] == [(ACCOUNT, POSITION)]
    assert option_symbols(managed) == {ACCOUNT: {SHORT_PUT, LONG_PUT, SHORT_CALL, LONG_CALL}}


def closed(kind: SpreadKind) -> SpreadClosed:
    return SpreadClosed(
        **env(), position_id=POSITION, spread_kind=kind, reason=CloseReason.EXPIRED, realized_pnl=0
    )


def test_closed_spreads_are_not_quoted_and_a_position_without_open_spreads_is_left() -> None:
    state = fold(opened(), closed(CALL))
    assert option_symbols(managed_positions(state)) == {ACCOUNT: {SHORT_PUT, LONG_PUT}}
    state.apply(closed(PS1))
    state.apply(closed(PS2))
    # Not closed yet (the closer books PositionClosed), but nothing to decide any more.
    assert [r.status for _, r in state.open_positions()] == [PositionStatus.OPEN]
    assert managed_positions(state) == []


def test_a_position_gone_or_not_app_managed_is_not_managed() -> None:
    gone = fold(opened(), flagged(AttentionReason.GONE_AT_BROKER, app_managed=False, active=False))
    assert managed_positions(gone) == []
    assert option_symbols(managed_positions(gone)) == {}
    mismatch = fold(
        opened(), flagged(AttentionReason.BROKER_MISMATCH, app_managed=True, active=True)
    )
    assert len(managed_positions(mismatch)) == 1  # its exits keep working while flagged
    inactive = fold(
        opened(), flagged(AttentionReason.BROKER_MISMATCH, app_managed=True, active=False)
    )
    assert managed_positions(inactive) == []  # no longer held at the broker


def test_positions_are_listed_by_account() -> None:
    other = uuid4()
    state = fold(opened(), opened(other, account_id="5WT00002"))
    assert [a for a, _ in managed_positions(state)] == [ACCOUNT, "5WT00002"]
    assert set(option_symbols(managed_positions(state))) == {ACCOUNT, "5WT00002"}
