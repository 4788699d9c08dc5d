"""The suggestions projection: lifecycle, the risk check attached, skips kept."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.risk import WarningLevel
from libs.contracts.strategy import (
    SkipReason,
    SuggestionApproved,
    SuggestionExpired,
    SuggestionRejected,
    SuggestionStatus,
)
from services.strategy.projection import (
    SUGGESTION_TRANSITIONS,
    SUGGESTIONS,
    SuggestionBook,
    apply,
)
from tests.integration.replay.scenario import MAX_RISK, Script

ACCOUNT = "5WT00001"
DECISIONS = [SuggestionApproved, SuggestionRejected, SuggestionExpired]


def test_a_generated_suggestion_is_pending_until_checked() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    generated = s.generated(suggestion_id, automatic=True)
    record = apply(SuggestionBook(), generated).suggestions[suggestion_id]
    assert record.status is SuggestionStatus.PENDING
    assert record.automatic
    assert record.risk_check is None
    assert record.suggestion.max_risk == MAX_RISK
    assert record.generated_at == generated.occurred_at


def test_the_risk_check_is_attached_with_its_warning() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    book = SUGGESTIONS.fold(
        [s.generated(suggestion_id), s.risk_passed(suggestion_id, WarningLevel.WARNING, "6970")]
    )
    check = book.suggestions[suggestion_id].risk_check
    assert check is not None
    assert check.passed
    assert check.warning_level is WarningLevel.WARNING
    assert check.assessment is not None
    assert check.assessment.utilisation == Decimal("0.72")


def test_a_failed_risk_check_says_why() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    book = SUGGESTIONS.fold([s.generated(suggestion_id), s.risk_failed(suggestion_id)])
    check = book.suggestions[suggestion_id].risk_check
    assert check is not None
    assert not check.passed
    assert check.reason is ErrorKind.RISK_BUDGET_EXCEEDED
    assert check.message == "max risk 230.00 exceeds the remaining 100.00"


def test_an_approval_records_the_limit_and_who_approved() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    approved = s.approved(suggestion_id, warning=WarningLevel.WARNING)
    record = SUGGESTIONS.fold([s.generated(suggestion_id), approved]).suggestions[suggestion_id]
    assert record.status is SuggestionStatus.APPROVED
    assert record.decided_at == approved.occurred_at
    assert record.approval is not None
    assert record.approval.limit_credit == Decimal("3.70")
    assert record.approval.approved_by == "alice"
    assert record.approval.warning_confirmed


def test_a_rejection_keeps_its_reason() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    book = SUGGESTIONS.fold([s.generated(suggestion_id), s.rejected(suggestion_id)])
    record = book.suggestions[suggestion_id]
    assert record.status is SuggestionStatus.REJECTED
    assert (record.rejected_by, record.rejection_reason) == ("alice", "over budget")


def test_an_approval_after_expiry_is_an_anomaly() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    generated = s.generated(suggestion_id)
    s.wait(timedelta(hours=24))
    late = s.approved(suggestion_id)
    book = SUGGESTIONS.fold([generated, s.expired(suggestion_id, generated.occurred_at), late])
    record = book.suggestions[suggestion_id]
    assert record.status is SuggestionStatus.EXPIRED
    assert record.approval is None
    assert [(a.event_id, a.message) for a in record.anomalies] == [
        (late.event_id, "SuggestionApproved is not allowed from EXPIRED")
    ]
    assert apply(book, late) is book


def test_a_skip_is_kept_with_its_reason() -> None:
    s = Script(ACCOUNT)
    skipped = s.skipped()
    book = apply(SuggestionBook(), skipped)
    skip = book.skipped[skipped.event_id]
    assert skip.reason_code is SkipReason.CONFLICTING_POSITION
    assert skip.underlying == "SPY"
    assert apply(book, skipped) is book


def test_events_for_a_suggestion_never_generated_are_kept_on_the_book() -> None:
    s = Script(ACCOUNT)
    stray = s.risk_passed(new_event_id())
    book = apply(SuggestionBook(), stray)
    assert book.suggestions == {}
    assert [a.event_id for a in book.anomalies] == [stray.event_id]


def test_redelivered_events_change_nothing() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    events = [s.generated(suggestion_id), s.risk_passed(suggestion_id), s.approved(suggestion_id)]
    book = SUGGESTIONS.fold(events)
    for event in events:
        assert apply(book, event) is book


PAIRS = list(itertools.product(SuggestionStatus, DECISIONS))


@pytest.mark.parametrize(
    ("status", "decision"), PAIRS, ids=[f"{s.value}-{d.__name__}" for s, d in PAIRS]
)
def test_every_pair_of_the_suggestion_lifecycle(
    status: SuggestionStatus, decision: type[SuggestionApproved]
) -> None:
    expected = {
        SuggestionApproved: SuggestionStatus.APPROVED,
        SuggestionRejected: SuggestionStatus.REJECTED,
        SuggestionExpired: SuggestionStatus.EXPIRED,
    }[decision]
    allowed = status is SuggestionStatus.PENDING
    assert SUGGESTION_TRANSITIONS.get((status, decision.__name__)) == (
        expected if allowed else None
    )
