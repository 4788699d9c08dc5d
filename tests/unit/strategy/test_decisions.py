"""Decisions on a pending suggestion: the pure rules, then `Decisions` on a fake shell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from libs.contracts.commands import ApproveSuggestion, RejectSuggestion
from libs.contracts.envelope import new_event_id
from libs.contracts.errors import (
    ErrorKind,
    InvalidState,
    RiskBudgetExceeded,
    RiskWarningUnconfirmed,
)
from libs.contracts.risk import WarningLevel
from libs.contracts.strategy import (
    SuggestionApproved,
    SuggestionExpired,
    SuggestionRejected,
    SuggestionStatus,
)
from libs.runtime.clock import ManualClock
from services.strategy.decisions import (
    DecidingLocks,
    Decisions,
    approval_warning,
    decision_cause,
    due_to_expire,
    past_expiry,
    require_pending,
)
from services.strategy.projection import RiskCheck
from services.strategy.state import StrategyState
from tests.integration.replay.scenario import Script, assessment
from tests.unit.strategy.shell import FakeShell

ACCOUNT = "5WT00001"
CHECKED_AT = datetime(2026, 1, 5, 15, 5, tzinfo=UTC)


def _check(
    *,
    passed: bool,
    warning: WarningLevel = WarningLevel.NONE,
    reason: ErrorKind | None = None,
    message: str | None = None,
) -> RiskCheck:
    return RiskCheck(passed, CHECKED_AT, assessment(warning), reason, message)


# --- the locks --------------------------------------------------------------------------


def test_a_suggestion_is_decided_on_once_at_a_time() -> None:
    locks, suggestion_id = DecidingLocks(), new_event_id()
    with locks.hold(suggestion_id):
        assert suggestion_id in locks
        with (
            pytest.raises(InvalidState, match="being decided on right now"),
            locks.hold(suggestion_id),
        ):
            pass
        with locks.hold(new_event_id()):  # another suggestion is free
            pass
    assert suggestion_id not in locks


def test_a_failed_decision_frees_its_suggestion() -> None:
    locks, suggestion_id = DecidingLocks(), new_event_id()
    with pytest.raises(RuntimeError), locks.hold(suggestion_id):
        raise RuntimeError("publish failed")
    assert suggestion_id not in locks


# --- pending and expiry ---------------------------------------------------------------


def test_only_a_pending_suggestion_may_be_decided() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    require_pending(state.record(ACCOUNT, suggestion_id))
    state.apply(s.rejected(suggestion_id))
    with pytest.raises(InvalidState, match="is REJECTED, not PENDING") as raised:
        require_pending(state.record(ACCOUNT, suggestion_id))
    assert raised.value.details == {"status": "REJECTED"}


def test_expiry_is_due_from_the_expiry_instant_on_while_pending() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    record = state.record(ACCOUNT, suggestion_id)
    expires_at = record.suggestion.expires_at
    assert not past_expiry(record, expires_at - timedelta(microseconds=1))
    assert past_expiry(record, expires_at)
    assert not due_to_expire(record, expires_at - timedelta(microseconds=1))
    assert due_to_expire(record, expires_at)
    state.apply(s.approved(suggestion_id))
    assert not due_to_expire(state.record(ACCOUNT, suggestion_id), expires_at)


# --- the approval's warning -----------------------------------------------------------


def test_no_check_yet_approves_without_a_warning() -> None:
    assert approval_warning(None, confirm_warning=False) is WarningLevel.NONE


def test_a_failed_check_refuses_with_its_own_error() -> None:
    check = _check(
        passed=False, reason=ErrorKind.INSUFFICIENT_BUYING_POWER, message="the broker says no"
    )
    with pytest.raises(Exception, match="the broker says no") as raised:
        approval_warning(check, confirm_warning=True)
    assert getattr(raised.value, "kind", None) is ErrorKind.INSUFFICIENT_BUYING_POWER


def test_a_failed_check_without_a_reason_is_over_budget() -> None:
    with pytest.raises(RiskBudgetExceeded, match=r"the risk check failed \(RISK_BUDGET_EXCEEDED\)"):
        approval_warning(_check(passed=False), confirm_warning=True)


def test_a_warning_needs_the_users_confirmation() -> None:
    check = _check(passed=True, warning=WarningLevel.WARNING)
    with pytest.raises(RiskWarningUnconfirmed) as raised:
        approval_warning(check, confirm_warning=False)
    assert raised.value.details == {"warning_level": "WARNING"}
    assert approval_warning(check, confirm_warning=True) is WarningLevel.WARNING


def test_a_passed_check_without_figures_has_no_warning() -> None:
    check = RiskCheck(True, CHECKED_AT, None)
    assert approval_warning(check, confirm_warning=False) is WarningLevel.NONE


# --- the decision's chain -------------------------------------------------------------


def test_a_users_decision_joins_the_suggestions_chain_caused_by_the_command() -> None:
    command = RejectSuggestion(account_id=ACCOUNT, suggestion_id=new_event_id())
    origin = Script(ACCOUNT).generated(command.suggestion_id).causation()
    assert decision_cause(origin, command) == {
        "correlation_id": origin["correlation_id"],
        "causation_id": command.command_id,
    }


def test_without_a_known_origin_the_command_starts_the_chain() -> None:
    command = ApproveSuggestion(account_id=ACCOUNT, suggestion_id=new_event_id())
    assert decision_cause(None, command) == command.causation()


# --- Decisions on a fake shell ----------------------------------------------------------


@dataclass
class World:
    script: Script
    state: StrategyState
    clock: ManualClock
    shell: FakeShell
    decisions: Decisions


def _world() -> World:
    s, state = Script(ACCOUNT), StrategyState()
    clock = ManualClock(s.clock + timedelta(minutes=30))
    shell = FakeShell(state.apply, clock)
    return World(s, state, clock, shell, Decisions(shell, state, DecidingLocks()))


async def test_an_approval_is_published_at_mid_in_the_suggestions_chain() -> None:
    w = _world()
    s, state, shell, decisions = w.script, w.state, w.shell, w.decisions
    suggestion_id = new_event_id()
    generated = s.generated(suggestion_id)
    state.apply(generated)
    state.apply(s.risk_passed(suggestion_id))
    command = ApproveSuggestion(account_id=ACCOUNT, suggestion_id=suggestion_id)
    reply = await decisions.approve(command)
    (approved,) = shell.published
    assert isinstance(approved, SuggestionApproved)
    assert approved.correlation_id == generated.correlation_id
    assert approved.causation_id == command.command_id
    assert approved.limit_credit == reply.limit_credit == Decimal("3.70")
    assert state.record(ACCOUNT, suggestion_id).status is SuggestionStatus.APPROVED
    with pytest.raises(InvalidState, match="APPROVED"):
        await decisions.approve(command)
    assert len(shell.published) == 1


async def test_a_rejection_replies_with_the_rejected_view() -> None:
    w = _world()
    s, state, shell, decisions = w.script, w.state, w.shell, w.decisions
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    reply = await decisions.reject(
        RejectSuggestion(account_id=ACCOUNT, suggestion_id=suggestion_id, reason="no")
    )
    assert reply.suggestion.status is SuggestionStatus.REJECTED
    (rejected,) = shell.published
    assert isinstance(rejected, SuggestionRejected)
    assert rejected.reason == "no"


async def test_deciding_on_an_expired_suggestion_publishes_its_expiry() -> None:
    w = _world()
    s, state, shell, decisions = w.script, w.state, w.shell, w.decisions
    suggestion_id = new_event_id()
    generated = s.generated(suggestion_id)
    state.apply(generated)
    w.clock.set(generated.suggestion.expires_at)
    with pytest.raises(InvalidState, match="expired at") as raised:
        await decisions.approve(ApproveSuggestion(account_id=ACCOUNT, suggestion_id=suggestion_id))
    assert raised.value.details == {"status": "EXPIRED"}
    (expired,) = shell.published
    assert isinstance(expired, SuggestionExpired)
    assert expired.correlation_id == generated.correlation_id


async def test_expire_due_expires_only_what_is_due_on_owned_accounts() -> None:
    w = _world()
    s, state, shell, decisions = w.script, w.state, w.shell, w.decisions
    other = Script("5WT00002")
    due, fresh, elsewhere = new_event_id(), new_event_id(), new_event_id()
    state.apply(s.generated(due))
    state.apply(other.generated(elsewhere))
    s.wait(timedelta(hours=2))
    state.apply(s.generated(fresh))
    shell.owned = {ACCOUNT}
    w.clock.set(state.record(ACCOUNT, due).suggestion.expires_at)
    await decisions.expire_due()
    assert [e.suggestion_id for e in shell.published if isinstance(e, SuggestionExpired)] == [due]
    assert len(shell.published) == 1
    await decisions.expire_due()  # nothing more: it is no longer pending
    assert len(shell.published) == 1
