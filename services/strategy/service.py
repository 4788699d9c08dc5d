"""The strategy service's shell: commands, the follower, expiry and the daily automation.

State is two projections of the business stream (suggestions per account, and the
accounts: settings, balance, open positions), rebuilt at start by a `Follower` and kept
live by it. An event this service publishes is also folded at once, so a caller that
gets the reply can act on it immediately (the follower's copy is then ignored by id).

Business time is the injected clock: expiry and the 10:00 automation poll it every
``poll_seconds`` of real time, so a manual clock's jump is seen within that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    ChainSnapshotReply,
    Command,
    DecisionSnapshotReply,
    GenerateSuggestion,
    GetChainSnapshot,
    GetDecisionSnapshot,
    GetMarketCondition,
    GetSuggestion,
    GetSuggestions,
    MarketConditionReply,
    RejectSuggestion,
    SuggestionListReply,
    SuggestionReply,
)
from libs.contracts.envelope import Causation, Event, new_event_id
from libs.contracts.errors import (
    ERROR_CLASSES,
    ErrorKind,
    InvalidState,
    NotFound,
    NoTradeError,
    RiskWarningUnconfirmed,
    SenexError,
    ServiceUnavailable,
    ValidationFailed,
)
from libs.contracts.risk import RiskCheckPassed, WarningLevel
from libs.contracts.strategy import (
    SkipReason,
    SuggestionApproved,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionSkipped,
    SuggestionStatus,
    SuggestionView,
)
from libs.runtime.clock import Clock, new_york_time
from libs.runtime.following import FollowingService
from libs.runtime.market_hours import is_session, session_bounds
from libs.runtime.runner import ServiceContext
from libs.runtime.tasks import cancel_and_wait
from services.strategy import accounts as account_projection
from services.strategy import projection as suggestion_projection
from services.strategy.accounts import AccountBook, AccountState
from services.strategy.core import Snapshot, decide
from services.strategy.core.approval import automatic_limit, manual_limit
from services.strategy.inputs import (
    chain_quotes,
    decision_snapshot,
    skip_message,
    suggestion_of,
)
from services.strategy.projection import SuggestionBook, SuggestionRecord

SERVICE = "strategy"
#: New York time of the daily automatic generation (DOMAIN.md 8).
AUTOMATION_AT = time(10, 0)
#: Business time before an automatic generation that failed without a record is retried.
AUTOMATION_RETRY = timedelta(minutes=5)


@dataclass(frozen=True)
class MarketDataTimeouts:
    """Seconds to wait for market data's answers (the chain waits for fresh quotes)."""

    condition: float = 3.0
    chain: float = 6.0
    chain_wait: float = 2.0


@dataclass(frozen=True)
class _Market:
    condition: MarketConditionReply
    chain: ChainSnapshotReply


class StrategyService(FollowingService):
    """Suggestions: generate, approve, reject, expire, and the daily automation."""

    name = SERVICE

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        poll_seconds: float = 0.5,
        timeouts: MarketDataTimeouts | None = None,
        durable: str = SERVICE,
    ) -> None:
        super().__init__(SERVICE, clock=clock, durable=durable)
        self._poll_seconds = poll_seconds
        self._timeouts = timeouts or MarketDataTimeouts()
        self._books: dict[str, SuggestionBook] = {}
        self._accounts = AccountBook()
        # Where each suggestion came from, so its later events join its causal chain.
        self._origins: dict[UUID, Causation] = {}
        self._deciding: set[UUID] = set()
        """Suggestions with an approval, rejection or expiry being published."""
        self._auto_attempts: dict[tuple[str, str, date], datetime] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, ctx: ServiceContext) -> None:
        await self.connect(ctx)
        await self.follow(self._apply, self._react)
        await self.serve(
            {
                GenerateSuggestion.VERB: self.generate,
                GetSuggestion.VERB: self.get_suggestion,
                GetSuggestions.VERB: self.get_suggestions,
                ApproveSuggestion.VERB: self.approve,
                RejectSuggestion.VERB: self.reject,
                GetDecisionSnapshot.VERB: self.decision_snapshot,
            }
        )
        self._tasks = [
            asyncio.create_task(self._every_tick(self.expire_due), name="strategy-expiry"),
            asyncio.create_task(self._every_tick(self.run_automation), name="strategy-auto"),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        await self.disconnect()

    async def _every_tick(self, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad tick must not end the schedule; logged with its trace
                self._log.exception("scheduled work failed", work=work.__name__)
            await asyncio.sleep(self._poll_seconds)

    # --- state ----------------------------------------------------------------------

    def _apply(self, event: Event) -> None:
        """Fold one event into both projections (pure apart from the assignment)."""
        account = event.account_id
        if account is None:
            return
        book = self._books.get(account, SuggestionBook())
        new_book = suggestion_projection.apply(book, event)
        if new_book is not book:
            self._books[account] = new_book
        self._accounts = account_projection.apply(self._accounts, event)
        if isinstance(event, SuggestionGenerated):
            self._origins.setdefault(event.suggestion.suggestion_id, event.causation())

    def account(self, account_id: str) -> AccountState:
        """What the service knows of ``account_id``."""
        return self._accounts.get(account_id)

    def book(self, account_id: str) -> SuggestionBook:
        """The account's suggestions."""
        return self._books.get(account_id, SuggestionBook())

    def _record(self, account_id: str, suggestion_id: UUID) -> SuggestionRecord:
        record = self.book(account_id).suggestions.get(suggestion_id)
        if record is None:
            raise NotFound(
                f"suggestion {suggestion_id} not found for account {account_id}",
                details={"suggestion_id": str(suggestion_id)},
            )
        return record

    async def _emit(self, event: Event) -> None:
        await self.bus.publish(event)
        self._apply(event)

    def _envelope(self, account_id: str, cause: Causation | None) -> dict[str, Any]:
        """Envelope fields; without a known cause the event starts a chain of its own."""
        links: dict[str, Any] = (
            dict(cause) if cause is not None else {"correlation_id": new_event_id()}
        )
        return {
            "occurred_at": self.clock.now(),
            "producer": SERVICE,
            "account_id": account_id,
            **links,
        }

    # --- generation -----------------------------------------------------------------

    async def _market(self, command: GenerateSuggestion | GetDecisionSnapshot) -> _Market:
        """Market condition and chain, asked of market data concurrently."""
        base = {
            "account_id": command.account_id,
            "underlying": command.underlying,
            "correlation_id": command.correlation_id,
            "requested_by": command.requested_by,
        }
        condition, chain = await asyncio.gather(
            self.bus.request(
                GetMarketCondition(**base),
                MarketConditionReply,
                timeout=self._timeouts.condition,
            ),
            self.bus.request(
                GetChainSnapshot(**base, wait_seconds=self._timeouts.chain_wait),
                ChainSnapshotReply,
                timeout=self._timeouts.chain,
            ),
        )
        return _Market(condition, chain)

    def _ready_account(self, command: GenerateSuggestion | GetDecisionSnapshot) -> AccountState:
        account = self.account(command.account_id)
        if command.underlying not in account.settings.underlyings:
            enabled = ", ".join(u.value for u in account.settings.underlyings) or "none"
            raise ValidationFailed(
                f"{command.underlying.value} is not enabled for account {command.account_id} "
                f"(enabled: {enabled})",
                field="underlying",
            )
        if account.balance is None:
            raise ServiceUnavailable(
                f"no balance known for account {command.account_id} yet: market data "
                "publishes balances every 30 s; try again shortly",
                details={"account_id": command.account_id},
            )
        return account

    async def _snapshot(
        self, command: GenerateSuggestion | GetDecisionSnapshot
    ) -> tuple[dict[str, Any], _Market]:
        account = self._ready_account(command)
        market = await self._market(command)
        return decision_snapshot(self.clock.now(), market.condition, market.chain, account), market

    async def decision_snapshot(self, command: GetDecisionSnapshot) -> DecisionSnapshotReply:
        """The exact snapshot a generation would decide from now."""
        snapshot, _ = await self._snapshot(command)
        return DecisionSnapshotReply(snapshot=snapshot)

    async def generate(self, command: GenerateSuggestion) -> SuggestionReply:
        """Decide from live data; publish SuggestionGenerated, or SuggestionSkipped + error."""
        try:
            snapshot_json, market = await self._snapshot(command)
        except SenexError as exc:
            if exc.kind is ErrorKind.MARKET_DATA_STALE:
                await self._skip(command, SkipReason.MARKET_DATA_STALE, exc.message, (), None)
            raise
        now = self.clock.now()
        decision = decide(Snapshot.model_validate(snapshot_json))
        if decision.proposal is None or decision.reason_code is not None:
            code = decision.reason_code or SkipReason.STRIKE_NOT_FOUND
            message = skip_message(command.underlying.value, decision)
            await self._skip(command, code, message, decision.trail, decision.expiration)
            raise ERROR_CLASSES[code.error_kind](
                message, details={"underlying": command.underlying.value}
            )
        suggestion = suggestion_of(
            decision,
            suggestion_id=new_event_id(),
            now=now,
            condition=market.condition,
            quotes=chain_quotes(market.chain),
        )
        event = SuggestionGenerated(
            **self._envelope(command.account_id, command.causation()),
            suggestion=suggestion,
            automatic=command.automatic,
            reason_trail=decision.trail,
            risk_free_rate=market.condition.risk_free_rate,
        )
        await self._emit(event)
        self._log.info(
            "suggestion generated",
            account_id=command.account_id,
            suggestion_id=str(suggestion.suggestion_id),
            automatic=command.automatic,
        )
        return SuggestionReply(
            suggestion=self._view(self._record(command.account_id, suggestion.suggestion_id))
        )

    async def _skip(
        self,
        command: GenerateSuggestion,
        code: SkipReason,
        message: str,
        trail: tuple[str, ...],
        expiration: date | None,
    ) -> None:
        details = {"underlying": command.underlying.value}
        if expiration is not None:
            details["expiration"] = expiration.isoformat()
        await self._emit(
            SuggestionSkipped(
                **self._envelope(command.account_id, command.causation()),
                underlying=command.underlying.value,
                reason_code=code,
                message=message,
                expiration=expiration,
                details=details,
                automatic=command.automatic,
                reason_trail=trail,
            )
        )
        self._log.info(
            "no trade",
            account_id=command.account_id,
            underlying=command.underlying.value,
            reason_code=code.value,
        )

    # --- decisions on a suggestion ----------------------------------------------------

    @contextlib.contextmanager
    def _deciding_on(self, suggestion_id: UUID) -> Iterator[None]:
        """Exclusive while an approval, rejection or expiry of it is being published."""
        if suggestion_id in self._deciding:
            raise InvalidState(f"suggestion {suggestion_id} is being decided on right now")
        self._deciding.add(suggestion_id)
        try:
            yield
        finally:
            self._deciding.discard(suggestion_id)

    async def _pending(self, command: Command, suggestion_id: UUID) -> SuggestionRecord:
        """The record if still pending and not past its expiry (which is then published)."""
        record = self._record(command.account_id, suggestion_id)
        if record.status is not SuggestionStatus.PENDING:
            raise InvalidState(
                f"suggestion {suggestion_id} is {record.status.value}, not PENDING",
                details={"status": record.status.value},
            )
        if self.clock.now() >= record.suggestion.expires_at:
            await self._expire(command.account_id, record)
            raise InvalidState(
                f"suggestion {suggestion_id} expired at {record.suggestion.expires_at.isoformat()}",
                details={"status": SuggestionStatus.EXPIRED.value},
            )
        return record

    def _decision_cause(self, command: ApproveSuggestion | RejectSuggestion) -> Causation:
        """A user's approval or rejection: caused by the command, in the suggestion's chain.

        The command comes with a fresh correlation of its own (the gateway does not know
        the suggestion's), so the event takes the correlation of the suggestion's
        generation: the reservation, order, position and exits that follow an approval
        are then one chain with the suggestion and its risk check, as they are for an
        automatic approval. The causation stays the command (its direct cause).
        """
        origin = self._origins.get(command.suggestion_id)
        if origin is None:
            return command.causation()
        return {"correlation_id": origin["correlation_id"], "causation_id": command.command_id}

    async def approve(self, command: ApproveSuggestion) -> ApprovalReply:
        """Approve a pending suggestion at mid (or the user's credit), risk check permitting."""
        with self._deciding_on(command.suggestion_id):
            record = await self._pending(command, command.suggestion_id)
            check = record.risk_check
            warning = WarningLevel.NONE
            if check is not None and not check.passed:
                kind = check.reason or ErrorKind.RISK_BUDGET_EXCEEDED
                raise ERROR_CLASSES.get(kind, SenexError)(
                    check.message or f"the risk check failed ({kind.value})", kind=kind
                )
            if check is not None and check.warning_level is not None:
                warning = check.warning_level
            if warning is not WarningLevel.NONE and not command.confirm_warning:
                raise RiskWarningUnconfirmed(
                    f"the risk check warns ({warning.value}): approve with confirm_warning",
                    details={"warning_level": warning.value},
                )
            suggestion = record.suggestion
            limit = manual_limit(
                suggestion.total_mid_credit,
                suggestion.includes_call_spread,
                command.custom_credit,
                suggestion.width,
            )
            await self._emit(
                SuggestionApproved(
                    **self._envelope(command.account_id, self._decision_cause(command)),
                    suggestion_id=command.suggestion_id,
                    limit_credit=limit,
                    custom_credit=command.custom_credit,
                    approved_by=command.requested_by,
                    warning_level=warning,
                    warning_confirmed=command.confirm_warning,
                )
            )
        return ApprovalReply(
            suggestion_id=command.suggestion_id, limit_credit=limit, warning_level=warning
        )

    async def reject(self, command: RejectSuggestion) -> SuggestionReply:
        """Turn a pending suggestion down."""
        with self._deciding_on(command.suggestion_id):
            await self._pending(command, command.suggestion_id)
            await self._emit(
                SuggestionRejected(
                    **self._envelope(command.account_id, self._decision_cause(command)),
                    suggestion_id=command.suggestion_id,
                    rejected_by=command.requested_by,
                    reason=command.reason,
                )
            )
        record = self._record(command.account_id, command.suggestion_id)
        return SuggestionReply(suggestion=self._view(record))

    async def _expire(self, account_id: str, record: SuggestionRecord) -> None:
        suggestion_id = record.suggestion.suggestion_id
        await self._emit(
            SuggestionExpired(
                **self._envelope(account_id, self._origins.get(suggestion_id)),
                suggestion_id=suggestion_id,
                expires_at=record.suggestion.expires_at,
            )
        )

    async def expire_due(self) -> None:
        """Publish SuggestionExpired for every pending suggestion past its expiry."""
        now = self.clock.now()
        for account_id, book in list(self._books.items()):
            if not self.owns(account_id):
                continue  # another replica's account
            for record in list(book.suggestions.values()):
                suggestion_id = record.suggestion.suggestion_id
                if (
                    record.status is not SuggestionStatus.PENDING
                    or record.suggestion.expires_at > now
                    or suggestion_id in self._deciding
                ):
                    continue
                with self._deciding_on(suggestion_id):
                    current = self._record(account_id, suggestion_id)
                    if current.status is SuggestionStatus.PENDING:
                        await self._expire(account_id, current)

    # --- automation -------------------------------------------------------------------

    def _done_today(self, account_id: str, underlying: str, day: date) -> bool:
        """Whether the automation already generated (or skipped) this underlying today."""
        book = self.book(account_id)
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

    async def run_automation(self) -> None:
        """Generate what is due today (10:00 New York on session days, until the close)."""
        now = self.clock.now()
        local = new_york_time(now)
        day = local.date()
        bounds = session_bounds(day)
        if not is_session(day) or bounds is None or local.time() < AUTOMATION_AT:
            return
        if now >= bounds[1]:
            return
        for account_id, state in list(self._accounts.accounts.items()):
            if not state.settings.automation_enabled or not self.owns(account_id):
                continue
            for underlying in state.settings.underlyings:
                key = (account_id, underlying.value, day)
                last = self._auto_attempts.get(key)
                if last is not None and now - last < AUTOMATION_RETRY:
                    continue
                if self._done_today(account_id, underlying.value, day):
                    continue
                self._auto_attempts[key] = now
                command = GenerateSuggestion(
                    account_id=account_id, underlying=underlying, automatic=True
                )
                try:
                    await self.generate(command)
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

    async def _react(self, event: Event) -> None:
        """Live side effects: the automatic approval after a passed risk check."""
        if isinstance(event, RiskCheckPassed):
            await self._auto_approve(event)

    async def _auto_approve(self, event: RiskCheckPassed) -> None:
        account_id = event.account_id
        state = self.account(account_id)
        record = self.book(account_id).suggestions.get(event.suggestion_id)
        if (
            record is None
            or not record.automatic
            or record.status is not SuggestionStatus.PENDING
            or not state.settings.automation_enabled
            or event.suggestion_id in self._deciding
        ):
            return
        if self.clock.now() >= record.suggestion.expires_at:
            return  # the expiry loop publishes the expiry
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
                state.settings.automation_offset_cents,
            )
        except NoTradeError as exc:
            self._log.warning("automation: not approved", error=exc.message)
            return
        with self._deciding_on(event.suggestion_id):
            current = self.book(account_id).suggestions.get(event.suggestion_id)
            if current is None or current.status is not SuggestionStatus.PENDING:
                return
            await self._emit(
                SuggestionApproved(
                    **self._envelope(account_id, event.causation()),
                    suggestion_id=event.suggestion_id,
                    limit_credit=limit,
                    automatic=True,
                    warning_level=warning,
                )
            )
        self._log.info(
            "automation: approved", suggestion_id=str(event.suggestion_id), limit=str(limit)
        )

    # --- queries ----------------------------------------------------------------------

    @staticmethod
    def _view(record: SuggestionRecord) -> SuggestionView:
        check = record.risk_check
        return SuggestionView(
            suggestion=record.suggestion,
            status=record.status,
            risk_check_passed=None if check is None else check.passed,
            risk_check_message=None if check is None else check.message,
            assessment=None if check is None else check.assessment,
        )

    async def get_suggestion(self, command: GetSuggestion) -> SuggestionReply:
        """One suggestion of the account."""
        return SuggestionReply(
            suggestion=self._view(self._record(command.account_id, command.suggestion_id))
        )

    async def get_suggestions(self, command: GetSuggestions) -> SuggestionListReply:
        """The account's suggestions, newest first."""
        records = [
            r
            for r in self.book(command.account_id).suggestions.values()
            if not command.pending_only or r.status is SuggestionStatus.PENDING
        ]
        records.sort(key=lambda r: r.suggestion.created_at, reverse=True)
        return SuggestionListReply(suggestions=tuple(self._view(r) for r in records))
