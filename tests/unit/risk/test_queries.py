"""The risk-budget query's answer (`budget_of`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from libs.contracts.envelope import new_event_id
from services.risk.queries import budget_of
from services.risk.state import NoBalance, RiskState
from tests.unit.risk.builders import ACCOUNT, funded

AS_OF = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)


def test_without_a_balance_there_is_no_budget_to_show() -> None:
    with pytest.raises(NoBalance):
        budget_of(RiskState().account(ACCOUNT), as_of=AS_OF, stressed=())


def test_the_budget_counts_the_pending_reservations_and_lists_the_stressed() -> None:
    s, state = funded("20000")
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    reserved = s.reserved(new_event_id(), suggestion_id)
    state.apply(reserved)
    view = budget_of(state.account(ACCOUNT), as_of=AS_OF, stressed=("SPY",))
    assert view.reserved_risk == reserved.amount
    assert view.available_risk == Decimal(8000)
    assert view.stressed_underlyings == ("SPY",)
    assert view.as_of == AS_OF
