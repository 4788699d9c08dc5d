"""Decisions on a pending suggestion: the user's approval or rejection, and expiry.

One decision per suggestion at a time: `DecidingLocks` refuses a second (INVALID_STATE)
while one is being published, and the publish returns once the fold holds it, so the
next decision reads the status it left. The pure rules are functions: whether a risk
check lets the approval through and at what warning (`approval_warning`), which chain
a user's decision joins (`decision_cause`), and what counts as pending or due.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    Command,
    RejectSuggestion,
    SuggestionReply,
)
from libs.contracts.envelope import Causation
from libs.contracts.errors import (
    ERROR_CLASSES,
    ErrorKind,
    InvalidState,
    RiskWarningUnconfirmed,
    SenexError,
)
from libs.contracts.risk import WarningLevel
from libs.contracts.strategy import (
    SuggestionApproved,
    SuggestionExpired,
    SuggestionRejected,
    SuggestionStatus,
)
from libs.runtime.following import ServiceShell
from services.strategy.core.approval import manual_limit
from services.strategy.projection import RiskCheck, SuggestionRecord
from services.strategy.queries import view
from services.strategy.state import StrategyState


class DecidingLocks:
    """Suggestions with an approval, rejection or expiry being published."""

    def __init__(self) -> None:
        self._deciding: set[UUID] = set()

    def __contains__(self, suggestion_id: object) -> bool:
        return suggestion_id in self._deciding

    @contextlib.contextmanager
    def hold(self, suggestion_id: UUID) -> Iterator[None]:
        """Exclusive while a decision on it is being published; INVALID_STATE if taken."""
        if suggestion_id in self._deciding:
            raise InvalidState(f"suggestion {suggestion_id} is being decided on right now")
        self._deciding.add(suggestion_id)
        try:
            yield
        finally:
            self._deciding.discard(suggestion_id)


def require_pending(record: SuggestionRecord) -> None:
    """INVALID_STATE unless the suggestion is still PENDING."""
    if record.status is not SuggestionStatus.PENDING:
        raise InvalidState(
            f"suggestion {record.suggestion.suggestion_id} is {record.status.value}, not PENDING",
            details={"status": record.status.value},
        )


def past_expiry(record: SuggestionRecord, now: datetime) -> bool:
    """Whether the suggestion's 24 hours are over at ``now``."""
    return now >= record.suggestion.expires_at


def due_to_expire(record: SuggestionRecord, now: datetime) -> bool:
    """Still PENDING but past its expiry: its SuggestionExpired is due."""
    return record.status is SuggestionStatus.PENDING and past_expiry(record, now)


def approval_warning(check: RiskCheck | None, confirm_warning: bool) -> WarningLevel:
    """The warning level a user's approval goes ahead at, given the suggestion's check.

    A failed check refuses the approval with its own error; a warning the user did not
    confirm refuses it with RISK_WARNING_UNCONFIRMED. No check yet: no warning known.
    """
    warning = WarningLevel.NONE
    if check is not None and not check.passed:
        kind = check.reason or ErrorKind.RISK_BUDGET_EXCEEDED
        raise ERROR_CLASSES.get(kind, SenexError)(
            check.message or f"the risk check failed ({kind.value})", kind=kind
        )
    if check is not None and check.warning_level is not None:
        warning = check.warning_level
    if warning is not WarningLevel.NONE and not confirm_warning:
        raise RiskWarningUnconfirmed(
            f"the risk check warns ({warning.value}): approve with confirm_warning",
            details={"warning_level": warning.value},
        )
    return warning


def decision_cause(
    origin: Causation | None, command: ApproveSuggestion | RejectSuggestion
) -> Causation:
    """A user's approval or rejection: caused by the command, in the suggestion's chain.

    The command comes with a fresh correlation of its own (the gateway does not know
    the suggestion's), so the event takes the correlation of the suggestion's
    generation (``origin``): the reservation, order, position and exits that follow an
    approval are then one chain with the suggestion and its risk check, as they are for
    an automatic approval. The causation stays the command (its direct cause).
    """
    if origin is None:
        return command.causation()
    return {"correlation_id": origin["correlation_id"], "causation_id": command.command_id}


class Decisions:
    """Approve, reject and expire suggestions, one decision per suggestion at a time."""

    def __init__(self, shell: ServiceShell, state: StrategyState, locks: DecidingLocks) -> None:
        self._shell = shell
        self._state = state
        self._locks = locks

    async def _pending(self, command: Command, suggestion_id: UUID) -> SuggestionRecord:
        """The record if still pending and not past its expiry (which is then published)."""
        record = self._state.record(command.account_id, suggestion_id)
        require_pending(record)
        if past_expiry(record, self._shell.clock.now()):
            await self._expire(command.account_id, record)
            raise InvalidState(
                f"suggestion {suggestion_id} expired at {record.suggestion.expires_at.isoformat()}",
                details={"status": SuggestionStatus.EXPIRED.value},
            )
        return record

    async def approve(self, command: ApproveSuggestion) -> ApprovalReply:
        """Approve a pending suggestion at mid (or the user's credit), risk check permitting."""
        with self._locks.hold(command.suggestion_id):
            record = await self._pending(command, command.suggestion_id)
            warning = approval_warning(record.risk_check, command.confirm_warning)
            suggestion = record.suggestion
            limit = manual_limit(
                suggestion.total_mid_credit,
                suggestion.includes_call_spread,
                command.custom_credit,
                suggestion.width,
            )
            origin = self._state.origin(command.suggestion_id)
            await self._shell.publish(
                SuggestionApproved(
                    **self._shell.envelope(command.account_id, decision_cause(origin, command)),
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
        with self._locks.hold(command.suggestion_id):
            await self._pending(command, command.suggestion_id)
            origin = self._state.origin(command.suggestion_id)
            await self._shell.publish(
                SuggestionRejected(
                    **self._shell.envelope(command.account_id, decision_cause(origin, command)),
                    suggestion_id=command.suggestion_id,
                    rejected_by=command.requested_by,
                    reason=command.reason,
                )
            )
        record = self._state.record(command.account_id, command.suggestion_id)
        return SuggestionReply(suggestion=view(record))

    async def _expire(self, account_id: str, record: SuggestionRecord) -> None:
        """Publish the suggestion's SuggestionExpired (the caller holds its lock)."""
        suggestion_id = record.suggestion.suggestion_id
        await self._shell.publish(
            SuggestionExpired(
                **self._shell.envelope(account_id, self._state.origin(suggestion_id)),
                suggestion_id=suggestion_id,
                expires_at=record.suggestion.expires_at,
            )
        )

    async def expire_due(self) -> None:
        """Publish SuggestionExpired for every pending suggestion past its expiry."""
        now = self._shell.clock.now()
        for account_id, book in self._state.books():
            if not self._shell.owns(account_id):
                continue  # another replica's account
            for record in list(book.suggestions.values()):
                suggestion_id = record.suggestion.suggestion_id
                if not due_to_expire(record, now) or suggestion_id in self._locks:
                    continue
                with self._locks.hold(suggestion_id):
                    current = self._state.record(account_id, suggestion_id)
                    if current.status is SuggestionStatus.PENDING:
                        await self._expire(account_id, current)
