"""The strategy's state: the fold of the stream, its lookups and the suggestions' origins."""

from __future__ import annotations

import pytest

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import NotFound
from libs.contracts.strategy import SuggestionStatus
from services.strategy.state import StrategyState
from tests.integration.replay.scenario import Script

ACCOUNT = "5WT00001"


def test_a_generated_suggestion_is_pending_with_its_generation_as_origin() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    suggestion_id = new_event_id()
    generated = s.generated(suggestion_id)
    state.apply(generated)
    record = state.record(ACCOUNT, suggestion_id)
    assert record.status is SuggestionStatus.PENDING
    assert state.origin(suggestion_id) == generated.causation()
    assert [account for account, _ in state.books()] == [ACCOUNT]


def test_the_first_generation_stays_the_origin() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    suggestion_id = new_event_id()
    first = s.generated(suggestion_id)
    state.apply(first)
    s.new_correlation()
    state.apply(s.generated(suggestion_id))
    assert state.origin(suggestion_id) == first.causation()


def test_an_unknown_suggestion_is_not_found() -> None:
    state = StrategyState()
    unknown = new_event_id()
    with pytest.raises(NotFound) as raised:
        state.record(ACCOUNT, unknown)
    assert raised.value.details == {"suggestion_id": str(unknown)}
    assert state.origin(unknown) is None


def test_a_decision_moves_the_record_on() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    state.apply(s.rejected(suggestion_id))
    assert state.record(ACCOUNT, suggestion_id).status is SuggestionStatus.REJECTED
    assert state.book("5WT00002").suggestions == {}
