"""The strategy service's state, and what its collaborators use of the service's shell.

`StrategyState` is the fold of the business stream and nothing else
(docs/decisions/0002-state-is-the-stream-fold.md): the suggestions per account, the
accounts (settings, balance, open positions) and where each suggestion came from, so its
later events join its causal chain. Only the follower applies events to it; a
collaborator that publishes reads its own event back once ``shell.publish`` returns.
"""

from __future__ import annotations

from uuid import UUID

from libs.contracts.envelope import Causation, Event
from libs.contracts.errors import NotFound
from libs.contracts.strategy import SuggestionGenerated
from services.strategy import accounts as account_projection
from services.strategy import projection as suggestion_projection
from services.strategy.accounts import AccountBook, AccountState
from services.strategy.projection import SuggestionBook, SuggestionRecord

SERVICE = "strategy"


class StrategyState:
    """Suggestions and accounts as folded from the stream, in stream order."""

    def __init__(self) -> None:
        self._books: dict[str, SuggestionBook] = {}
        self._accounts = AccountBook()
        self._origins: dict[UUID, Causation] = {}

    def apply(self, event: Event) -> None:
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

    def accounts(self) -> list[tuple[str, AccountState]]:
        """Every known account (a copy: safe to iterate across awaits)."""
        return list(self._accounts.accounts.items())

    def book(self, account_id: str) -> SuggestionBook:
        """The account's suggestions."""
        return self._books.get(account_id, SuggestionBook())

    def books(self) -> list[tuple[str, SuggestionBook]]:
        """Every account's suggestions (a copy: safe to iterate across awaits)."""
        return list(self._books.items())

    def record(self, account_id: str, suggestion_id: UUID) -> SuggestionRecord:
        """The suggestion of the account; NotFound when it has none of that id."""
        record = self.book(account_id).suggestions.get(suggestion_id)
        if record is None:
            raise NotFound(
                f"suggestion {suggestion_id} not found for account {account_id}",
                details={"suggestion_id": str(suggestion_id)},
            )
        return record

    def origin(self, suggestion_id: UUID) -> Causation | None:
        """The envelope links of the suggestion's generation (None: unknown here)."""
        return self._origins.get(suggestion_id)
