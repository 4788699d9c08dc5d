"""What execution knows, folded from the business stream (deterministic, no I/O).

Per account, the `OrderBook` of `services.execution.projection` (the same fold `senex
replay` uses); besides it, what the reactions decide from:

- suggestions still able to become an order (from ``SuggestionGenerated``; forgotten
  once their opening order is recorded, or the suggestion ends), and the reservations
  already released (an order is never placed for those);
- the causation of each order's next event (its latest lifecycle event), so every
  event of one order chains to the one before it;
- positions opened, profit-target / monitor exits decided (``ExitOrderPlaced``), and
  positions flagged for a partly filled opening;
- trading suspensions per account.

The state is the fold of the business stream in stream order and nothing else: execution
never applies the events it publishes, it waits until the fold has passed them
(docs/decisions/0002-state-is-the-stream-fold.md). Each handler still ignores what it
has seen (keys are ids), so an event delivered again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from libs.contracts.envelope import Causation, Event
from libs.contracts.execution import OrderSubmitted
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    PositionAttentionCleared,
    PositionNeedsAttention,
    PositionOpened,
)
from libs.contracts.risk import RiskReleased
from libs.contracts.strategy import (
    Suggestion,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
)
from libs.contracts.system import TradingResumed, TradingSuspended
from libs.domain.lifecycle import ORDER_EVENTS
from services.execution import projection
from services.execution.projection import OrderBook, OrderRecord

_ORDER_EVENT_TYPES = tuple(ORDER_EVENTS)


@dataclass
class ExecutionState:
    """Execution's projection of every account."""

    books: dict[str, OrderBook] = field(default_factory=dict)
    accounts_of: dict[UUID, str] = field(default_factory=dict)
    """The account of each order id."""
    suggestions: dict[UUID, Suggestion] = field(default_factory=dict)
    released: set[UUID] = field(default_factory=set)
    """Reservation ids given back."""
    causes: dict[UUID, Causation] = field(default_factory=dict)
    """Per order id: the causation of its next event (its latest event)."""
    positions: dict[UUID, PositionOpened] = field(default_factory=dict)
    exits: dict[UUID, ExitOrderPlaced] = field(default_factory=dict)
    """Exit decisions by their order id."""
    partial_flags: set[UUID] = field(default_factory=set)
    """Positions flagged for a partly filled opening (raised once, even if cleared)."""
    mismatches: set[UUID] = field(default_factory=set)
    """Positions flagged because the broker's state made no sense (raised once)."""
    cleared: set[UUID] = field(default_factory=set)
    suspended: dict[str, TradingSuspended] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        """Fold ``event``."""
        account = event.account_id
        if account is None:
            return
        if isinstance(event, _ORDER_EVENT_TYPES):
            self._order_event(account, event)
        elif isinstance(event, SuggestionGenerated):
            suggestion = event.suggestion
            self.suggestions.setdefault(suggestion.suggestion_id, suggestion)
        elif isinstance(event, SuggestionRejected | SuggestionExpired):
            self.suggestions.pop(event.suggestion_id, None)
        elif isinstance(event, RiskReleased):
            self.released.add(event.reservation_id)
        elif isinstance(event, PositionOpened):
            self.positions.setdefault(event.position_id, event)
        elif isinstance(event, ExitOrderPlaced):
            self.exits.setdefault(event.order_id, event)
        elif isinstance(event, PositionNeedsAttention):
            if event.reason is AttentionReason.PARTIAL_FILL:
                self.partial_flags.add(event.position_id)
            elif event.reason is AttentionReason.BROKER_MISMATCH:
                self.mismatches.add(event.position_id)
        elif isinstance(event, PositionAttentionCleared):
            self.cleared.add(event.position_id)
        elif isinstance(event, TradingSuspended):
            self.suspended[account] = event
        elif isinstance(event, TradingResumed):
            self.suspended.pop(account, None)

    def _order_event(self, account: str, event: Event) -> None:
        book = self.books.get(account, OrderBook())
        changed = projection.apply(book, event)
        if changed is not book:
            self.books[account] = changed
        order_id: UUID = getattr(event, "order_id")  # noqa: B009 - every order event has one
        self.accounts_of.setdefault(order_id, account)
        self.causes[order_id] = event.causation()
        if isinstance(event, OrderSubmitted) and event.suggestion_id is not None:
            self.suggestions.pop(event.suggestion_id, None)

    def book(self, account: str) -> OrderBook:
        """The account's orders."""
        return self.books.get(account, OrderBook())

    def order(self, order_id: UUID) -> OrderRecord | None:
        """One order of any account."""
        account = self.accounts_of.get(order_id)
        return None if account is None else self.book(account).orders.get(order_id)

    def open_orders(self, account: str) -> list[OrderRecord]:
        """Orders of ``account`` not yet in a terminal status."""
        return [o for o in self.book(account).orders.values() if not o.status.is_terminal]

    def accounts(self) -> list[str]:
        """Every account with orders."""
        return sorted(self.books)
