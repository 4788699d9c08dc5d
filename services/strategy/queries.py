"""Answers about suggestions, read from the state: one suggestion, or an account's list."""

from __future__ import annotations

from libs.contracts.commands import (
    GetSuggestion,
    GetSuggestions,
    SuggestionListReply,
    SuggestionReply,
)
from libs.contracts.strategy import SuggestionStatus, SuggestionView
from services.strategy.projection import SuggestionBook, SuggestionRecord
from services.strategy.state import StrategyState


def view(record: SuggestionRecord) -> SuggestionView:
    """The suggestion as callers see it: its status and its latest risk check."""
    check = record.risk_check
    return SuggestionView(
        suggestion=record.suggestion,
        status=record.status,
        risk_check_passed=None if check is None else check.passed,
        risk_check_message=None if check is None else check.message,
        assessment=None if check is None else check.assessment,
    )


def newest_first(book: SuggestionBook, *, pending_only: bool) -> list[SuggestionRecord]:
    """The book's suggestions (only the PENDING ones if asked), newest first."""
    records = [
        r
        for r in book.suggestions.values()
        if not pending_only or r.status is SuggestionStatus.PENDING
    ]
    records.sort(key=lambda r: r.suggestion.created_at, reverse=True)
    return records


class SuggestionQueries:
    """The ``get_suggestion`` and ``get_suggestions`` commands."""

    def __init__(self, state: StrategyState) -> None:
        self._state = state

    async def get_suggestion(self, command: GetSuggestion) -> SuggestionReply:
        """One suggestion of the account."""
        record = self._state.record(command.account_id, command.suggestion_id)
        return SuggestionReply(suggestion=view(record))

    async def get_suggestions(self, command: GetSuggestions) -> SuggestionListReply:
        """The account's suggestions, newest first."""
        records = newest_first(
            self._state.book(command.account_id), pending_only=command.pending_only
        )
        return SuggestionListReply(suggestions=tuple(view(r) for r in records))
