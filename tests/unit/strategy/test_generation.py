"""Whether a decision is a no trade, and what its SuggestionSkipped details say."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from libs.contracts.strategy import SkipReason
from services.strategy.core import Decision, Snapshot, decide
from services.strategy.generation import skip_details, skip_reason
from tests.unit.strategy.builders import snapshot_dict


def test_a_proposal_without_a_reason_is_published() -> None:
    decision = decide(Snapshot.model_validate(snapshot_dict()))
    assert decision.proposal is not None
    assert skip_reason(decision) is None


def test_a_reason_makes_a_no_trade_even_beside_a_proposal() -> None:
    decision = decide(Snapshot.model_validate(snapshot_dict()))
    odd = replace(decision, reason_code=SkipReason.CONFLICTING_POSITION)
    assert skip_reason(odd) is SkipReason.CONFLICTING_POSITION


def test_the_cores_reason_is_kept() -> None:
    decision = Decision(reason_code=SkipReason.POSITION_LIMIT, trail=("limit",))
    assert skip_reason(decision) is SkipReason.POSITION_LIMIT


def test_no_proposal_and_no_reason_is_strike_not_found() -> None:
    assert skip_reason(Decision(reason_code=None, trail=())) is SkipReason.STRIKE_NOT_FOUND


def test_skip_details_name_the_expiration_when_one_was_chosen() -> None:
    assert skip_details("QQQ", None) == {"underlying": "QQQ"}
    assert skip_details("SPY", date(2026, 2, 20)) == {
        "underlying": "SPY",
        "expiration": "2026-02-20",
    }
