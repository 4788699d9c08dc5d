"""The daily automation: the pure rules, then `Automation` on a fake shell."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from libs.contracts.account import AccountSettings, AccountSettingsChanged
from libs.contracts.base import Underlying
from libs.contracts.commands import GenerateSuggestion, SuggestionReply
from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ServiceUnavailable, StrikeNotFound
from libs.contracts.risk import RiskTemplate, WarningLevel
from libs.contracts.strategy import SuggestionApproved
from libs.runtime.clock import NEW_YORK, ManualClock
from libs.runtime.following import ServiceShell
from services.strategy.automation import (
    Automation,
    attempted_recently,
    automation_day,
    done_today,
    may_auto_approve,
)
from services.strategy.core.approval import automatic_limit
from services.strategy.decisions import DecidingLocks
from services.strategy.generation import Generation
from services.strategy.market import MarketDataTimeouts, MarketInputs
from services.strategy.state import StrategyState
from tests.integration.replay.scenario import Script
from tests.unit.strategy.shell import FakeShell

ACCOUNT = "5WT00001"
MONDAY = date(2026, 1, 5)


def ny(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK)


# --- when ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (ny(MONDAY, 9, 59), None),
        (ny(MONDAY, 10), MONDAY),
        (ny(MONDAY, 15, 59), MONDAY),
        (ny(MONDAY, 16), None),  # the close
        (ny(date(2026, 1, 10), 11), None),  # a Saturday
        (ny(date(2026, 1, 19), 11), None),  # Martin Luther King Jr. Day
        (ny(date(2025, 11, 28), 12, 59), date(2025, 11, 28)),
        (ny(date(2025, 11, 28), 13), None),  # the early close after Thanksgiving
    ],
)
def test_the_automation_runs_from_10_until_the_close_on_session_days(
    now: datetime, day: date | None
) -> None:
    assert automation_day(now) == day


def test_an_attempt_is_retried_after_five_minutes() -> None:
    now = ny(MONDAY, 10, 30)
    assert not attempted_recently(None, now)
    assert attempted_recently(now - timedelta(minutes=4, seconds=59), now)
    assert not attempted_recently(now - timedelta(minutes=5), now)


# --- done today -------------------------------------------------------------------------


def test_an_automatic_suggestion_or_skip_of_the_day_is_done() -> None:
    s, state = Script(ACCOUNT), StrategyState()  # QQQ suggestions, SPY skips, 2026-01-05
    state.apply(s.generated(new_event_id()))  # manual
    assert not done_today(state.book(ACCOUNT), "QQQ", MONDAY)
    state.apply(s.generated(new_event_id(), automatic=True))
    assert done_today(state.book(ACCOUNT), "QQQ", MONDAY)
    assert not done_today(state.book(ACCOUNT), "QQQ", MONDAY + timedelta(days=1))
    assert not done_today(state.book(ACCOUNT), "SPY", MONDAY)
    state.apply(s.skipped())  # manual
    assert not done_today(state.book(ACCOUNT), "SPY", MONDAY)
    state.apply(s.skipped().model_copy(update={"automatic": True, "event_id": new_event_id()}))
    assert done_today(state.book(ACCOUNT), "SPY", MONDAY)


# --- may a passed check approve ---------------------------------------------------------


def test_only_a_pending_unexpired_automatic_suggestion_with_automation_on_is_approved() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    auto, manual = new_event_id(), new_event_id()
    state.apply(s.generated(auto, automatic=True))
    state.apply(s.generated(manual))
    book = state.book(ACCOUNT)
    record = book.suggestions[auto]
    now = record.suggestion.created_at
    assert may_auto_approve(record, automation_enabled=True, now=now)
    assert not may_auto_approve(None, automation_enabled=True, now=now)
    assert not may_auto_approve(record, automation_enabled=False, now=now)
    assert not may_auto_approve(book.suggestions[manual], automation_enabled=True, now=now)
    expiry = record.suggestion.expires_at
    assert not may_auto_approve(record, automation_enabled=True, now=expiry)
    state.apply(s.rejected(auto))
    rejected = state.book(ACCOUNT).suggestions[auto]
    assert not may_auto_approve(rejected, automation_enabled=True, now=now)


# --- Automation on a fake shell ---------------------------------------------------------


class RecordingGeneration(Generation):
    """Records the commands; fails as told by underlying."""

    def __init__(
        self,
        shell: ServiceShell,
        state: StrategyState,
        inputs: MarketInputs,
        *,
        failures: dict[str, Exception],
    ) -> None:
        super().__init__(shell, state, inputs)
        self.commands: list[GenerateSuggestion] = []
        self.failures = failures

    async def generate(self, command: GenerateSuggestion) -> SuggestionReply:
        self.commands.append(command)
        raise self.failures.get(command.underlying.value, StrikeNotFound("no strike"))


def _settings(s: Script, *, automation: bool, offset_cents: int = 0) -> AccountSettingsChanged:
    return AccountSettingsChanged(
        **s.env("gateway"),
        user_id="alice",
        settings=AccountSettings(
            risk_template=RiskTemplate.MODERATE,
            automation_enabled=automation,
            automation_offset_cents=offset_cents,
            underlyings=(Underlying.QQQ, Underlying.SPY),
        ),
    )


async def test_the_automation_generates_each_enabled_underlying_once_per_attempt() -> None:
    state, clock = StrategyState(), ManualClock(ny(MONDAY, 9, 59))
    shell = FakeShell(state.apply, clock, owned={ACCOUNT, "5WT00002"})
    state.apply(_settings(Script(ACCOUNT), automation=True))
    state.apply(_settings(Script("5WT00002"), automation=False))
    state.apply(_settings(Script("5WT00003"), automation=True))  # another replica's
    inputs = MarketInputs(shell, state, MarketDataTimeouts())
    generation = RecordingGeneration(
        shell, state, inputs, failures={"SPY": ServiceUnavailable("market data is away")}
    )
    automation = Automation(shell, state, generation, DecidingLocks())

    await automation.run()
    assert generation.commands == []  # before 10:00
    clock.set(ny(MONDAY, 10))
    await automation.run()
    assert [(c.account_id, c.underlying, c.automatic) for c in generation.commands] == [
        (ACCOUNT, Underlying.QQQ, True),
        (ACCOUNT, Underlying.SPY, True),
    ]
    clock.advance(timedelta(minutes=4))
    await automation.run()
    assert len(generation.commands) == 2  # attempted recently
    clock.advance(timedelta(minutes=1))
    await automation.run()
    assert len(generation.commands) == 4  # neither left a suggestion or a skip: retried


async def test_a_passed_check_approves_an_automatic_suggestion_at_the_conceded_limit() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    clock = ManualClock(s.clock + timedelta(minutes=10))
    shell = FakeShell(state.apply, clock)
    state.apply(_settings(s, automation=True, offset_cents=2))
    suggestion_id = new_event_id()
    generated = s.generated(suggestion_id, automatic=True)
    state.apply(generated)
    inputs = MarketInputs(shell, state, MarketDataTimeouts())
    automation = Automation(shell, state, Generation(shell, state, inputs), DecidingLocks())

    check = s.risk_passed(suggestion_id)
    await automation.on_risk_check_passed(check)
    (approved,) = shell.published
    assert isinstance(approved, SuggestionApproved)
    assert approved.automatic
    assert approved.causation_id == check.event_id
    suggestion = generated.suggestion
    assert approved.limit_credit == automatic_limit(
        suggestion.total_mid_credit,
        suggestion.total_natural_credit,
        suggestion.includes_call_spread,
        2,
    )
    assert approved.limit_credit == Decimal("3.68")
    await automation.on_risk_check_passed(s.risk_passed(suggestion_id))  # no longer pending
    assert len(shell.published) == 1


async def test_a_warning_is_left_to_the_user() -> None:
    s, state = Script(ACCOUNT), StrategyState()
    shell = FakeShell(state.apply, ManualClock(s.clock + timedelta(minutes=10)))
    state.apply(_settings(s, automation=True))
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id, automatic=True))
    inputs = MarketInputs(shell, state, MarketDataTimeouts())
    automation = Automation(shell, state, Generation(shell, state, inputs), DecidingLocks())
    await automation.on_risk_check_passed(s.risk_passed(suggestion_id, WarningLevel.WARNING))
    assert shell.published == []
