"""What an approval is judged from (`approval_inputs`), or why it fails before that."""

from __future__ import annotations

from decimal import Decimal

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind
from services.risk.core import Failure
from services.risk.reservations import ApprovalInputs, approval_inputs
from services.risk.state import RiskState
from tests.integration.replay.scenario import Script
from tests.unit.risk.builders import ACCOUNT, funded


def test_an_unknown_suggestion_is_not_found() -> None:
    s, state = funded()
    approval = s.approved(new_event_id())
    inputs = approval_inputs(state.account(ACCOUNT), approval)
    assert isinstance(inputs, Failure)
    assert inputs.kind is ErrorKind.NOT_FOUND
    assert str(approval.suggestion_id) in inputs.message


def test_without_a_balance_there_is_no_budget() -> None:
    s, state = Script(ACCOUNT), RiskState()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    inputs = approval_inputs(state.account(ACCOUNT), s.approved(suggestion_id))
    assert isinstance(inputs, Failure)
    assert inputs.kind is ErrorKind.SERVICE_UNAVAILABLE


def test_the_risk_is_taken_at_the_approvals_limit_credit() -> None:
    s, state = funded()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    inputs = approval_inputs(state.account(ACCOUNT), s.approved(suggestion_id, limit="3.50"))
    assert isinstance(inputs, ApprovalInputs)
    assert inputs.suggestion.suggestion_id == suggestion_id
    assert inputs.at_limit.max_risk == 2 * 3 * 100 - Decimal("3.50") * 100  # W = 3
    assert inputs.risk.buying_power == Decimal(20000)


def test_a_limit_above_the_spread_width_is_an_input_error() -> None:
    s, state = funded()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    inputs = approval_inputs(state.account(ACCOUNT), s.approved(suggestion_id, limit="6.01"))
    assert isinstance(inputs, Failure)
    assert inputs.kind is ErrorKind.VALIDATION_ERROR
    assert "exceeds the spread width" in inputs.message
