"""The risk check on a new suggestion: `judge_suggestion`, then `SuggestionChecks`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.risk import RiskCheckFailed, RiskCheckPassed
from libs.runtime.clock import ManualClock
from services.risk.checks import SuggestionChecks, judge_suggestion
from services.risk.core import Failure, RiskCheck
from services.risk.state import RiskState
from tests.integration.replay.scenario import MAX_RISK, Script
from tests.unit.risk.builders import ACCOUNT, funded
from tests.unit.strategy.shell import FakeShell


def test_without_a_balance_there_is_nothing_to_judge_by() -> None:
    s, state = Script(ACCOUNT), RiskState()
    verdict = judge_suggestion(state.account(ACCOUNT), s.generated(new_event_id()).suggestion)
    assert isinstance(verdict, Failure)
    assert verdict.kind is ErrorKind.SERVICE_UNAVAILABLE


def test_a_negative_max_risk_is_an_input_error() -> None:
    s, state = funded()
    suggestion = s.generated(new_event_id()).suggestion.model_copy(update={"max_risk": Decimal(-1)})
    verdict = judge_suggestion(state.account(ACCOUNT), suggestion)
    assert isinstance(verdict, Failure)
    assert verdict.kind is ErrorKind.VALIDATION_ERROR
    assert "-1" in verdict.message


def test_a_suggestion_inside_the_budget_passes_at_its_max_risk() -> None:
    s, state = funded("20000")  # conservative: 0.40 x 20000 = 8000 available
    verdict = judge_suggestion(state.account(ACCOUNT), s.generated(new_event_id()).suggestion)
    assert isinstance(verdict, RiskCheck)
    assert verdict.passed
    assert verdict.assessment.trade_max_risk == MAX_RISK
    assert verdict.assessment.available_risk == Decimal(8000)


def test_a_suggestion_over_the_budget_fails_with_its_figures() -> None:
    s, state = funded("500")  # 200 available, the trade risks 230
    verdict = judge_suggestion(state.account(ACCOUNT), s.generated(new_event_id()).suggestion)
    assert isinstance(verdict, RiskCheck)
    assert verdict.failure is not None
    assert verdict.failure.kind is ErrorKind.RISK_BUDGET_EXCEEDED


def test_a_stressed_suggestion_gets_the_stressed_tolerance() -> None:
    s, state = funded("500")  # stressed conservative: 0.60 x 500 = 300 available
    suggestion = s.generated(new_event_id()).suggestion.model_copy(update={"stressed": True})
    verdict = judge_suggestion(state.account(ACCOUNT), suggestion)
    assert isinstance(verdict, RiskCheck)
    assert verdict.passed
    assert verdict.assessment.tolerance == Decimal("0.60")


async def test_a_suggestion_is_checked_once_in_its_chain() -> None:
    s, state = funded()
    shell = FakeShell(state.apply, ManualClock(s.clock + timedelta(minutes=1)), producer="risk")
    checks = SuggestionChecks(shell, state)
    generated = s.generated(new_event_id())
    state.apply(generated)
    await checks.check_suggestion(generated)
    (passed,) = shell.published
    assert isinstance(passed, RiskCheckPassed)
    assert passed.causation_id == generated.event_id
    assert passed.correlation_id == generated.correlation_id
    await checks.check_suggestion(generated)  # a redelivery
    assert len(shell.published) == 1


async def test_without_a_balance_the_check_fails_without_figures() -> None:
    s, state = Script(ACCOUNT), RiskState()
    shell = FakeShell(state.apply, ManualClock(s.clock))
    generated = s.generated(new_event_id())
    state.apply(generated)
    await SuggestionChecks(shell, state).check_suggestion(generated)
    (failed,) = shell.published
    assert isinstance(failed, RiskCheckFailed)
    assert failed.reason is ErrorKind.SERVICE_UNAVAILABLE
    assert failed.assessment is None
