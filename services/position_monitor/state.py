"""What the monitor knows, folded from the business stream in stream order (pure, no I/O).

- Per account, the `PositionBook` of `services.position_monitor.projection`: the very
  fold ``senex replay`` runs, fed the same events in the same (stream) order, so the
  live book and the replayed one are equal. The shell therefore never applies its own
  events ahead of the stream; it waits until the follower has folded them.
- The exit orders of every spread and where each one stands, from ``ExitOrderPlaced``
  and execution's order events: the core's `WorkingExit` of a spread is its latest
  exit that has not ended, and a filled exit carries its fills (closing the spread).
- The accounts' e-mail topics (``AccountSettingsChanged``) and linked accounts.
- The notifications already requested (their ids), so a redelivered cause asks once.

Each fold ignores what it has seen (keys are ids), so redeliveries are harmless.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from libs.contracts.account import AccountLinked, AccountSettings, AccountSettingsChanged
from libs.contracts.envelope import Event
from libs.contracts.execution import (
    LegFill,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderStatus,
    OrderSubmitted,
)
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    PositionNeedsAttention,
    PositionStatus,
)
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import NotificationRequested, NotificationTopic
from libs.domain.lifecycle import status_of
from services.position_monitor import projection
from services.position_monitor.core import WorkingExit
from services.position_monitor.projection import PositionBook, PositionRecord, SpreadRecord

#: E-mail topics of an account before its first ``AccountSettingsChanged``: every topic
#: (the contract's default), so nothing is silently dropped for a new account.
DEFAULT_EMAIL_TOPICS: tuple[NotificationTopic, ...] = AccountSettings.model_fields[
    "email_topics"
].default


@dataclass(frozen=True, slots=True)
class ExitOrder:
    """One exit order of a spread: the decision and where it stands."""

    order_id: UUID
    account_id: str
    position_id: UUID
    spread_kind: SpreadKind
    purpose: OrderPurpose
    limit_price: Decimal
    decided_at: datetime
    status: OrderStatus | None = None
    """None until execution records it (``OrderSubmitted``)."""
    failed: bool = False
    """Execution could not place it (flagged ORDER_FAILED without an order event)."""
    fills: tuple[LegFill, ...] = ()
    """Every fill so far (execution's reports are cumulative)."""

    @property
    def ended(self) -> bool:
        """No longer working: filled, cancelled, rejected, expired, replaced or failed."""
        return self.failed or (self.status is not None and self.status.is_terminal)

    @property
    def working(self) -> WorkingExit:
        """The core's view of it."""
        return WorkingExit(self.order_id, self.purpose, self.limit_price)


_EMPTY = PositionBook()


@dataclass
class MonitorState:
    """The monitor's projection of every account."""

    books: dict[str, PositionBook] = field(default_factory=dict)
    exits: dict[UUID, ExitOrder] = field(default_factory=dict)
    """Exit orders by order id (profit targets and the monitor's own)."""
    email_topics: dict[str, tuple[NotificationTopic, ...]] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    """The address each account's settings give for its e-mails."""
    linked: set[str] = field(default_factory=set)
    notified: set[UUID] = field(default_factory=set)
    """Notification ids already requested."""
    by_spread: dict[tuple[UUID, SpreadKind], list[UUID]] = field(default_factory=dict)
    """Exit order ids of each (position, spread), in decision order."""

    def apply(self, event: Event) -> None:
        """Fold ``event``."""
        account = event.account_id
        if account is None:
            return
        book = self.books.get(account, _EMPTY)
        changed = projection.apply(book, event)
        if changed is not book:
            self.books[account] = changed
        if isinstance(event, ExitOrderPlaced):
            if event.order_id not in self.exits:
                self._add_exit(
                    ExitOrder(
                        order_id=event.order_id,
                        account_id=account,
                        position_id=event.position_id,
                        spread_kind=event.spread_kind,
                        purpose=event.purpose,
                        limit_price=event.limit_price,
                        decided_at=event.occurred_at,
                    )
                )
        elif isinstance(event, OrderSubmitted):
            self._submitted(account, event)
        elif status_of(event) is not None:
            self._order_event(event)
        elif isinstance(event, PositionNeedsAttention):
            self._attention(event)
        elif isinstance(event, AccountSettingsChanged):
            self.email_topics[account] = tuple(event.settings.email_topics)
            if event.settings.email is None:
                self.emails.pop(account, None)
            else:
                self.emails[account] = event.settings.email
        elif isinstance(event, AccountLinked):
            self.linked.add(account)
        elif isinstance(event, NotificationRequested):
            self.notified.add(event.notification_id)

    def _submitted(self, account: str, event: OrderSubmitted) -> None:
        if not event.purpose.is_exit or event.position_id is None or event.spread_kind is None:
            return
        known = self.exits.get(event.order_id)
        if known is None:
            # A replacement made through ReplaceOrderPrice has no ExitOrderPlaced of its own.
            known = ExitOrder(
                order_id=event.order_id,
                account_id=account,
                position_id=event.position_id,
                spread_kind=event.spread_kind,
                purpose=event.purpose,
                limit_price=event.limit_price,
                decided_at=event.occurred_at,
            )
        if known.status is None:
            self._add_exit(replace(known, status=OrderStatus.SUBMITTED))

    def _add_exit(self, order: ExitOrder) -> None:
        if order.order_id not in self.exits:
            key = (order.position_id, order.spread_kind)
            self.by_spread.setdefault(key, []).append(order.order_id)
        self.exits[order.order_id] = order

    def _order_event(self, event: Event) -> None:
        order_id: UUID = getattr(event, "order_id")  # noqa: B009 - every order event has one
        known = self.exits.get(order_id)
        status = status_of(event)
        if (
            known is None
            or status is None
            or (known.status is not None and known.status.is_terminal)
        ):
            return  # not an exit, or already ended (a late copy changes nothing)
        fills = known.fills
        if isinstance(event, OrderFilled | OrderPartiallyFilled):
            fills = event.legs
        self.exits[order_id] = replace(known, status=status, fills=fills)

    def _attention(self, event: PositionNeedsAttention) -> None:
        # Execution flags an exit it could not even record as ORDER_FAILED without any
        # order event: the exit is not working, so the spread's next decision may replace it.
        if event.reason is not AttentionReason.ORDER_FAILED or event.order_id is None:
            return
        known = self.exits.get(event.order_id)
        if known is not None and known.status is None:
            self.exits[event.order_id] = replace(known, failed=True)

    # --- reading ------------------------------------------------------------------------

    def book(self, account: str) -> PositionBook:
        """The account's positions."""
        return self.books.get(account, PositionBook())

    def position(self, account: str, position_id: UUID) -> PositionRecord | None:
        """One position of the account."""
        return self.book(account).positions.get(position_id)

    def open_positions(self) -> Iterator[tuple[str, PositionRecord]]:
        """Every opened position not yet closed, by account (sorted, for determinism)."""
        for account in sorted(self.books):
            for position in self.books[account].positions.values():
                if position.opened_at is not None and position.status is PositionStatus.OPEN:
                    yield account, position

    def email_of(self, account: str) -> str | None:
        """The account's e-mail address from its settings, when it gave one."""
        return self.emails.get(account)

    def topics(self, account: str) -> tuple[NotificationTopic, ...]:
        """The account's e-mail topics."""
        return self.email_topics.get(account, DEFAULT_EMAIL_TOPICS)

    def working_exit(self, spread: SpreadRecord) -> WorkingExit | None:
        """The spread's latest exit order, unless it has ended."""
        if spread.exit_order_id is None:
            return None
        known = self.exits.get(spread.exit_order_id)
        if known is None:
            # Decided (the book has it) but not folded here yet: never happens in stream
            # order, since the book and this map fold the same event.
            return None
        return None if known.ended else known.working

    def exit_order(self, order_id: UUID) -> ExitOrder | None:
        """One exit order."""
        return self.exits.get(order_id)

    def closing_fill(self, position_id: UUID, kind: SpreadKind) -> ExitOrder | None:
        """A completely filled exit of the spread, if any (the earliest decided)."""
        for order_id in self.by_spread.get((position_id, kind), ()):
            order = self.exits[order_id]
            if order.status is OrderStatus.FILLED:
                return order
        return None
