"""The suggestion views and lists the queries answer with."""

from __future__ import annotations

from datetime import timedelta

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.strategy import SuggestionStatus
from services.strategy.queries import newest_first, view
from services.strategy.state import StrategyState
from tests.integration.replay.scenario import Script

ACCOUNT = "5WT00001"


def test_a_view_without_a_check_has_no_verdict() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    shown = view(state.record(ACCOUNT, suggestion_id))
    assert shown.status is SuggestionStatus.PENDING
    assert shown.risk_check_passed is None
    assert shown.risk_check_message is None
    assert shown.assessment is None


def test_a_view_shows_the_latest_check() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    failed = s.risk_failed(suggestion_id)
    state.apply(failed)
    shown = view(state.record(ACCOUNT, suggestion_id))
    assert shown.risk_check_passed is False
    assert shown.risk_check_message == failed.message
    assert shown.assessment == failed.assessment
    assert failed.reason is ErrorKind.RISK_BUDGET_EXCEEDED


def test_lists_are_newest_first_and_may_hold_only_the_pending() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    first, second, third = new_event_id(), new_event_id(), new_event_id()
    for suggestion_id in (first, second, third):
        state.apply(s.generated(suggestion_id))
        s.wait(timedelta(minutes=5))
    state.apply(s.rejected(second))
    book = state.book(ACCOUNT)
    listed = [r.suggestion.suggestion_id for r in newest_first(book, pending_only=False)]
    assert listed == [third, second, first]
    pending = [r.suggestion.suggestion_id for r in newest_first(book, pending_only=True)]
    assert pending == [third, first]
