"""Broker sync diff: gone, mismatched and unowned holdings; never an edit (DOMAIN.md 4, 7)."""

from __future__ import annotations

from uuid import UUID

from libs.contracts.positions import AttentionReason, HeldLeg, PositionNeedsAttention
from libs.contracts.symbols import OptionType
from services.position_monitor.core import AppPosition, diff_broker_positions, is_new_finding
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    LONG_CALL,
    LONG_PUT,
    NOW,
    SHORT_CALL,
    SHORT_PUT,
    occ,
    trident,
)

A = UUID(int=0xA)
B = UUID(int=0xB)
FULL: dict[str, int] = {SHORT_PUT: -2, LONG_PUT: 2, SHORT_CALL: -1, LONG_CALL: 1}


def app(position_id: UUID = A) -> AppPosition:
    return AppPosition.of_spreads(position_id, "QQQ", trident())


def test_expected_legs_of_a_trident() -> None:
    assert dict(app().legs) == FULL
    assert dict(AppPosition.of_spreads(A, "QQQ", trident()[1:]).legs) == {
        SHORT_PUT: -1,
        LONG_PUT: 1,
        SHORT_CALL: -1,
        LONG_CALL: 1,
    }


def test_agreeing_broker_is_in_sync() -> None:
    diff = diff_broker_positions([app()], FULL)
    assert diff.in_sync
    assert diff_broker_positions([], {}).in_sync


def test_position_gone_at_the_broker_is_inactive_and_needs_attention() -> None:
    diff = diff_broker_positions([app()], {})
    (finding,) = diff.findings
    assert finding.reason is AttentionReason.GONE_AT_BROKER
    assert not finding.active
    assert finding.held_legs == ()
    assert "closed outside the app" in finding.message
    event = PositionNeedsAttention(
        occurred_at=NOW,
        producer="position_monitor",
        account_id=ACCOUNT,
        correlation_id=A,
        position_id=finding.position_id,
        underlying=finding.underlying,
        reason=finding.reason,
        message=finding.message,
        app_managed=True,
        active=finding.active,
        held_legs=finding.held_legs,
    )
    assert not event.active


def test_zero_quantities_at_the_broker_count_as_gone() -> None:
    diff = diff_broker_positions([app()], dict.fromkeys(FULL, 0))
    assert [f.reason for f in diff.findings] == [AttentionReason.GONE_AT_BROKER]
    assert diff.unowned == ()


def test_different_quantity_needs_attention() -> None:
    broker = {**FULL, SHORT_PUT: -1, LONG_PUT: 1}
    (finding,) = diff_broker_positions([app()], broker).findings
    assert finding.reason is AttentionReason.BROKER_MISMATCH
    assert finding.active
    assert [(d.symbol, d.expected, d.held) for d in finding.differences] == sorted(
        [(SHORT_PUT, -2, -1), (LONG_PUT, 2, 1)]
    )
    assert set(finding.held_legs) == {HeldLeg(symbol=s, quantity=q) for s, q in broker.items()}
    assert "expected -2, broker holds -1" in finding.message


def test_a_closed_call_spread_alone_is_a_mismatch_not_gone() -> None:
    broker: dict[str, int] = {SHORT_PUT: -2, LONG_PUT: 2}
    (finding,) = diff_broker_positions([app()], broker).findings
    assert finding.reason is AttentionReason.BROKER_MISMATCH
    assert {d.symbol for d in finding.differences} == {SHORT_CALL, LONG_CALL}


def test_wrong_sign_is_a_mismatch() -> None:
    broker = {**FULL, SHORT_CALL: 1}
    (finding,) = diff_broker_positions([app()], broker).findings
    assert [(d.expected, d.held) for d in finding.differences] == [(-1, 1)]


def test_unowned_broker_holdings_are_reported_not_adopted() -> None:
    stranger = occ(OptionType.PUT, 560)
    diff = diff_broker_positions([app()], {**FULL, stranger: -3, "SPY": 100})
    assert diff.findings == ()
    assert [(u.symbol, u.quantity) for u in diff.unowned] == sorted([(stranger, -3), ("SPY", 100)])
    only = diff_broker_positions([], {stranger: -3})
    assert [(u.symbol, u.quantity) for u in only.unowned] == [(stranger, -3)]


def test_shared_symbols_sum_across_positions() -> None:
    doubled = {s: 2 * q for s, q in FULL.items()}
    assert diff_broker_positions([app(A), app(B)], doubled).in_sync
    # One of two identical positions closed outside: neither can be blamed alone.
    diff = diff_broker_positions([app(A), app(B)], FULL)
    assert [(f.position_id, f.reason) for f in diff.findings] == [
        (A, AttentionReason.BROKER_MISMATCH),
        (B, AttentionReason.BROKER_MISMATCH),
    ]
    # Both gone: both inactive.
    diff = diff_broker_positions([app(A), app(B)], {})
    assert [f.reason for f in diff.findings] == [AttentionReason.GONE_AT_BROKER] * 2


def test_more_than_expected_is_a_mismatch_not_unowned() -> None:
    broker = {**FULL, SHORT_PUT: -3}
    diff = diff_broker_positions([app()], broker)
    assert diff.unowned == ()
    assert [d.symbol for d in diff.findings[0].differences] == [SHORT_PUT]


def test_flagged_positions_own_their_held_legs() -> None:
    held = (HeldLeg(symbol=SHORT_PUT, quantity=-1), HeldLeg(symbol=LONG_PUT, quantity=1))
    partial = AppPosition.of_held_legs(A, "QQQ", held)
    assert diff_broker_positions([partial], {SHORT_PUT: -1, LONG_PUT: 1}).in_sync


def test_is_new_finding_only_on_change() -> None:
    (finding,) = diff_broker_positions([app()], {SHORT_PUT: -2, LONG_PUT: 2}).findings
    assert is_new_finding(finding, None, ())
    assert not is_new_finding(finding, finding.reason, finding.held_legs)
    assert is_new_finding(finding, AttentionReason.GONE_AT_BROKER, finding.held_legs)
    assert is_new_finding(finding, finding.reason, finding.held_legs[:1])
