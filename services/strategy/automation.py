"""The daily automation: generate at 10:00 New York, approve on a passed risk check.

On session days from `AUTOMATION_AT` until the close, every account with automation on
gets one generation per enabled underlying (one suggestion or one "no trade" a day); a
generation that failed without leaving either is retried after `AUTOMATION_RETRY`. An
automatic suggestion whose risk check passes without a warning is approved at mid
conceded toward natural by the account's offset. The pure rules are functions
(`automation_day`, `done_today`, `attempted_recently`, `may_auto_approve`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from libs.contracts.commands import GenerateSuggestion
from libs.contracts.errors import NoTradeError, SenexError
from libs.contracts.risk import RiskCheckPassed, WarningLevel
from libs.contracts.strategy import SuggestionApproved, SuggestionStatus
from libs.runtime.clock import new_york_time
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from libs.runtime.market_hours import is_session, session_bounds
from services.strategy.core.approval import automatic_limit
from services.strategy.decisions import DecidingLocks, past_expiry
from services.strategy.generation import Generation
from services.strategy.projection import SuggestionBook, SuggestionRecord
from services.strategy.state import SERVICE, StrategyState

#: New York time of the daily automatic generation (DOMAIN.md 8).
AUTOMATION_AT = time(10, 0)
#: Business time before an automatic generation that failed without a record is retried.
AUTOMATION_RETRY = timedelta(minutes=5)


def automation_day(now: datetime) -> date | None:
    """The New York day whose automation may run at ``now``: a session day, from 10:00
    until the close; None outside that."""
    local = new_york_time(now)
    day = local.date()
    bounds = session_bounds(day)
    if not is_session(day) or bounds is None or local.time() < AUTOMATION_AT:
        return None
    if now >= bounds[1]:
        return None
    return day


def done_today(book: SuggestionBook, underlying: str, day: date) -> bool:
    """Whether the automation already generated (or skipped) this underlying on ``day``."""
    for record in book.suggestions.values():
        if (
            record.automatic
            and record.suggestion.underlying == underlying
            and new_york_time(record.generated_at).date() == day
        ):
            return True
    return any(
        skip.automatic
        and skip.underlying == underlying
        and new_york_time(skip.skipped_at).date() == day
        for skip in book.skipped.values()
    )


def attempted_recently(last: datetime | None, now: datetime) -> bool:
    """Whether the last attempt (if any) is less than `AUTOMATION_RETRY` ago."""
    return last is not None and now - last < AUTOMATION_RETRY


def may_auto_approve(
    record: SuggestionRecord | None, *, automation_enabled: bool, now: datetime
) -> bool:
    """Whether a passed risk check may approve ``record`` automatically: an automatic,
    still pending, unexpired suggestion of an account with automation on."""
    return (
        record is not None
        and record.automatic
        and record.status is SuggestionStatus.PENDING
        and automation_enabled
        and not past_expiry(record, now)  # the expiry loop publishes the expiry
    )


class Automation:
    """The 10:00 generation (`run`) and the approval on a passed check (`on_risk_check_passed`)."""

    def __init__(
        self,
        shell: ServiceShell,
        state: StrategyState,
        generation: Generation,
        locks: DecidingLocks,
    ) -> None:
        self._shell = shell
        self._state = state
        self._generation = generation
        self._locks = locks
        self._attempts: dict[tuple[str, str, date], datetime] = {}
        self._log = get_logger(SERVICE)

    async def run(self) -> None:
        """Generate what is due today (10:00 New York on session days, until the close)."""
        now = self._shell.clock.now()
        day = automation_day(now)
        if day is None:
            return
        for account_id, state in self._state.accounts():
            if not state.settings.automation_enabled or not self._shell.owns(account_id):
                continue
            for underlying in state.settings.underlyings:
                key = (account_id, underlying.value, day)
                if attempted_recently(self._attempts.get(key), now):
                    continue
                if done_today(self._state.book(account_id), underlying.value, day):
                    continue
                self._attempts[key] = now
                command = GenerateSuggestion(
                    account_id=account_id, underlying=underlying, automatic=True
                )
                try:
                    await self._generation.generate(command)
                except NoTradeError as exc:
                    self._log.info("automation: no trade", account_id=account_id, error=exc.message)
                except SenexError as exc:
                    self._log.warning(
                        "automation: generation failed; will retry",
                        account_id=account_id,
                        underlying=underlying.value,
                        kind=exc.kind.value,
                        error=exc.message,
                    )

    async def on_risk_check_passed(self, event: RiskCheckPassed) -> None:
        """Approve an automatic suggestion whose check passed without a warning."""
        account_id = event.account_id
        settings = self._state.account(account_id).settings
        record = self._state.book(account_id).suggestions.get(event.suggestion_id)
        if event.suggestion_id in self._locks or not may_auto_approve(
            record, automation_enabled=settings.automation_enabled, now=self._shell.clock.now()
        ):
            return
        assert record is not None  # may_auto_approve says so
        warning = event.assessment.warning_level
        if warning is not WarningLevel.NONE:
            # Nobody can confirm a warning for the automation: left for the user.
            self._log.warning(
                "automation: not approved, the risk check warns",
                suggestion_id=str(event.suggestion_id),
                warning_level=warning.value,
            )
            return
        suggestion = record.suggestion
        try:
            limit = automatic_limit(
                suggestion.total_mid_credit,
                suggestion.total_natural_credit,
                suggestion.includes_call_spread,
                settings.automation_offset_cents,
            )
        except NoTradeError as exc:
            self._log.warning("automation: not approved", error=exc.message)
            return
        with self._locks.hold(event.suggestion_id):
            current = self._state.book(account_id).suggestions.get(event.suggestion_id)
            if current is None or current.status is not SuggestionStatus.PENDING:
                return
            await self._shell.publish(
                SuggestionApproved(
                    **self._shell.envelope(account_id, event.causation()),
                    suggestion_id=event.suggestion_id,
                    limit_credit=limit,
                    automatic=True,
                    warning_level=warning,
                )
            )
        self._log.info(
            "automation: approved", suggestion_id=str(event.suggestion_id), limit=str(limit)
        )
