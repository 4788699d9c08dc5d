"""What the risk service knows of each account (pure): everything a verdict is made from.

Per account: the risk template (``AccountSettingsChanged``; conservative until the first
one), the broker's latest derivative buying power (``BalanceUpdated``, latest by the
broker's timestamp), the `RiskUsage` projection (reservations and open positions), the
suggestions still awaiting an approval verdict (so ``SuggestionApproved``, which carries
only an id, can be re-checked at its limit credit), which suggestions were already
checked and which approvals already decided (so a redelivered event does nothing), and
the opening orders placed under each reservation (so an order's end finds the
reservation to release: ``OrderSubmitted`` of purpose OPEN names its reservation, later
execution events name only the order).

`release_due` is the release decision: given the state *after* an event was folded, the
reservation that event ends, with the contracts' `ReleaseReason`, or None.

Every handler is idempotent: sets are keyed maps, the settings and the balance keep the
newest by time, and `RiskUsage` ignores an event id it has applied. So an event
redelivered to the fold (across processes) changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from libs.contracts.account import AccountSettingsChanged, BalanceUpdated
from libs.contracts.envelope import Event
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import (
    OrderCancelled,
    OrderExpired,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderRejected,
    OrderReplaced,
    OrderSubmitted,
)
from libs.contracts.positions import PositionOpened
from libs.contracts.risk import (
    ReleaseReason,
    RiskCheckFailed,
    RiskCheckPassed,
    RiskReservationFailed,
    RiskReserved,
    RiskTemplate,
)
from libs.contracts.strategy import (
    Suggestion,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
)
from libs.projections import Handlers
from libs.projections.framework import PMap
from services.risk import projection as usage_projection
from services.risk.core import AccountRisk
from services.risk.projection import Reservation, ReservationStatus, RiskUsage

#: The template of an account before its first AccountSettingsChanged (DOMAIN.md 4).
DEFAULT_TEMPLATE = RiskTemplate.CONSERVATIVE


@dataclass(frozen=True, slots=True)
class OpeningOrder:
    """An opening order and the reservation that allowed it."""

    order_id: UUID
    reservation_id: UUID
    suggestion_id: UUID
    partially_filled: bool = False
    """Some contracts filled: if it now ends unfilled the rest is an unmanaged position."""
    replaced_by: UUID | None = None
    """Re-priced: the replacement carries the reservation on; this order's end releases nothing."""


@dataclass(frozen=True, slots=True)
class RiskAccount:
    """One account as the risk service sees it."""

    account_id: str
    template: RiskTemplate = DEFAULT_TEMPLATE
    settings_at: datetime | None = None
    """When the template was set (None: the default applies)."""
    buying_power: Decimal | None = None
    """The broker's derivative buying power; None until the first BalanceUpdated."""
    balance_at: datetime | None = None
    """The broker's timestamp of ``buying_power``."""
    usage: RiskUsage = field(default_factory=RiskUsage)
    suggestions: PMap[UUID, Suggestion] = field(default_factory=PMap)
    """Generated suggestions whose approval has not been decided (approved or not yet)."""
    checked: PMap[UUID, bool] = field(default_factory=PMap)
    """Suggestions whose risk check was published: passed or not."""
    decided: PMap[UUID, bool] = field(default_factory=PMap)
    """Approvals decided: True reserved, False failed."""
    orders: PMap[UUID, OpeningOrder] = field(default_factory=PMap)

    def risk(self) -> AccountRisk | None:
        """The core's view of the account; None until a balance is known."""
        if self.buying_power is None:
            return None
        return AccountRisk(self.template, self.buying_power, self.usage.open_positions_max_risk)

    def pending(self) -> dict[UUID, Decimal]:
        """Pending reservations' amounts by suggestion id (the core's ``reserved`` map)."""
        return {
            r.suggestion_id: r.amount
            for r in self.usage.reservations.values()
            if r.status is ReservationStatus.PENDING
        }

    def pending_reservation(self, suggestion_id: UUID) -> Reservation | None:
        """The suggestion's reservation still holding risk, if any."""
        for reservation_id in self.usage.by_suggestion.get(suggestion_id, ()):
            reservation = self.usage.reservations[reservation_id]
            if reservation.status is ReservationStatus.PENDING:
                return reservation
        return None


@dataclass(frozen=True, slots=True)
class RiskBook:
    """Every account the risk service has heard of."""

    accounts: PMap[str, RiskAccount] = field(default_factory=PMap)

    def get(self, account_id: str) -> RiskAccount:
        """The account's state (an empty one when nothing is known yet)."""
        return self.accounts.get(account_id) or RiskAccount(account_id)


_handlers: Handlers[RiskAccount] = Handlers()


@_handlers.on(AccountSettingsChanged)
def _settings(account: RiskAccount, event: AccountSettingsChanged) -> RiskAccount:
    # Settings are whole snapshots: the newest wins, a late older one is ignored.
    if account.settings_at is not None and account.settings_at > event.occurred_at:
        return account
    template = event.settings.risk_template
    if template is account.template and account.settings_at == event.occurred_at:
        return account
    return replace(account, template=template, settings_at=event.occurred_at)


@_handlers.on(BalanceUpdated)
def _balance(account: RiskAccount, event: BalanceUpdated) -> RiskAccount:
    # The broker's figures are the truth; the newest by the broker's own timestamp wins.
    if account.balance_at is not None and account.balance_at > event.broker_updated_at:
        return account
    if (account.buying_power, account.balance_at) == (
        event.derivative_buying_power,
        event.broker_updated_at,
    ):
        return account
    return replace(
        account, buying_power=event.derivative_buying_power, balance_at=event.broker_updated_at
    )


@_handlers.on(SuggestionGenerated)
def _generated(account: RiskAccount, event: SuggestionGenerated) -> RiskAccount:
    suggestion_id = event.suggestion.suggestion_id
    if suggestion_id in account.decided or suggestion_id in account.suggestions:
        return account
    return replace(account, suggestions=account.suggestions.set(suggestion_id, event.suggestion))


def _forget(account: RiskAccount, suggestion_id: UUID) -> PMap[UUID, Suggestion]:
    if suggestion_id not in account.suggestions:
        return account.suggestions
    return PMap((k, v) for k, v in account.suggestions.items() if k != suggestion_id)


def _checked(account: RiskAccount, suggestion_id: UUID, passed: bool) -> RiskAccount:
    if suggestion_id in account.checked:
        return account
    return replace(account, checked=account.checked.set(suggestion_id, passed))


@_handlers.on(RiskCheckPassed)
def _check_passed(account: RiskAccount, event: RiskCheckPassed) -> RiskAccount:
    return _checked(account, event.suggestion_id, True)


@_handlers.on(RiskCheckFailed)
def _check_failed(account: RiskAccount, event: RiskCheckFailed) -> RiskAccount:
    return _checked(account, event.suggestion_id, False)


def _decided(account: RiskAccount, suggestion_id: UUID, reserved: bool) -> RiskAccount:
    if suggestion_id in account.decided:
        return account
    return replace(
        account,
        decided=account.decided.set(suggestion_id, reserved),
        suggestions=_forget(account, suggestion_id),
    )


@_handlers.on(RiskReserved)
def _reserved(account: RiskAccount, event: RiskReserved) -> RiskAccount:
    return _decided(account, event.suggestion_id, True)


@_handlers.on(RiskReservationFailed)
def _reservation_failed(account: RiskAccount, event: RiskReservationFailed) -> RiskAccount:
    return _decided(account, event.suggestion_id, False)


@_handlers.on(SuggestionRejected)
def _rejected(account: RiskAccount, event: SuggestionRejected) -> RiskAccount:
    suggestions = _forget(account, event.suggestion_id)
    return (
        account if suggestions is account.suggestions else replace(account, suggestions=suggestions)
    )


@_handlers.on(SuggestionExpired)
def _expired(account: RiskAccount, event: SuggestionExpired) -> RiskAccount:
    suggestions = _forget(account, event.suggestion_id)
    return (
        account if suggestions is account.suggestions else replace(account, suggestions=suggestions)
    )


@_handlers.on(OrderSubmitted)
def _submitted(account: RiskAccount, event: OrderSubmitted) -> RiskAccount:
    if (
        event.purpose is not OrderPurpose.OPEN
        or event.reservation_id is None
        or event.suggestion_id is None
        or event.order_id in account.orders
    ):
        return account
    order = OpeningOrder(event.order_id, event.reservation_id, event.suggestion_id)
    return replace(account, orders=account.orders.set(event.order_id, order))


@_handlers.on(OrderReplaced)
def _replaced(account: RiskAccount, event: OrderReplaced) -> RiskAccount:
    old = account.orders.get(event.order_id)
    if old is None or old.replaced_by == event.replacement_order_id:
        return account
    orders = account.orders.set(old.order_id, replace(old, replaced_by=event.replacement_order_id))
    if event.replacement_order_id not in orders:
        # Linked here too, in case the replacement's OrderSubmitted comes later (or never).
        successor = OpeningOrder(event.replacement_order_id, old.reservation_id, old.suggestion_id)
        orders = orders.set(successor.order_id, successor)
    return replace(account, orders=orders)


@_handlers.on(OrderPartiallyFilled)
def _partial(account: RiskAccount, event: OrderPartiallyFilled) -> RiskAccount:
    order = account.orders.get(event.order_id)
    if order is None or order.partially_filled:
        return account
    return replace(
        account, orders=account.orders.set(order.order_id, replace(order, partially_filled=True))
    )


def apply_account(account: RiskAccount, event: Event) -> RiskAccount:
    """The account after ``event``: its own fields and its `RiskUsage`."""
    changed = _handlers.apply(account, event)
    usage = usage_projection.apply(changed.usage, event)
    return changed if usage is changed.usage else replace(changed, usage=usage)


def apply(book: RiskBook, event: Event) -> RiskBook:
    """The book after ``event`` (unchanged for market-wide events and ones it does not fold)."""
    if event.account_id is None:
        return book
    account = book.get(event.account_id)
    changed = apply_account(account, event)
    if changed is account:
        return book
    return replace(book, accounts=book.accounts.set(event.account_id, changed))


# --- releases ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Release:
    """A pending reservation to give back, and why."""

    reservation: Reservation
    reason: ReleaseReason
    order_id: UUID | None


def _order_end_reason(event: Event, order: OpeningOrder) -> ReleaseReason | None:
    if isinstance(event, OrderRejected):
        # ORDER_REJECTED is the broker's refusal; any other kind means the order never
        # reached the broker (retries exhausted, market closed, broker unavailable).
        return (
            ReleaseReason.REJECTED
            if event.kind is ErrorKind.ORDER_REJECTED
            else ReleaseReason.FAILED
        )
    if isinstance(event, OrderCancelled | OrderExpired):
        if order.partially_filled:
            return ReleaseReason.PARTIALLY_FILLED
        return (
            ReleaseReason.CANCELLED if isinstance(event, OrderCancelled) else ReleaseReason.EXPIRED
        )
    return None


def release_due(account: RiskAccount, event: Event) -> Release | None:
    """The reservation ``event`` ends, judged on the state after folding it; else None.

    - An opening order cancelled, rejected or expired: its reservation, CANCELLED /
      REJECTED (FAILED when it never reached the broker) / EXPIRED, or PARTIALLY_FILLED
      when some contracts had filled. A replaced order's end releases nothing (its
      replacement carries the reservation).
    - ``PositionOpened``: the suggestion's reservation, FILLED (its risk is now the
      position's max risk, which RiskUsage counts from the same event).
    - A suggestion rejected or expired while its reservation is pending and no opening
      order was ever seen for it: EXPIRED, or CANCELLED for a rejection.

    Nothing is due when the reservation is unknown or no longer pending, so a repeated
    event releases nothing twice.
    """
    if isinstance(event, OrderCancelled | OrderExpired | OrderRejected):
        order = account.orders.get(event.order_id)
        if order is None or order.replaced_by is not None:
            return None
        reservation = account.usage.reservations.get(order.reservation_id)
        reason = _order_end_reason(event, order)
        if reservation is None or reservation.status is not ReservationStatus.PENDING or not reason:
            return None
        return Release(reservation, reason, order.order_id)
    if isinstance(event, PositionOpened):
        pending = account.pending_reservation(event.suggestion_id)
        if pending is None:
            return None
        return Release(pending, ReleaseReason.FILLED, event.opening_order_id)
    if isinstance(event, SuggestionRejected | SuggestionExpired):
        pending = account.pending_reservation(event.suggestion_id)
        if pending is None or any(
            o.reservation_id == pending.reservation_id for o in account.orders.values()
        ):
            return None
        reason = (
            ReleaseReason.EXPIRED
            if isinstance(event, SuggestionExpired)
            else ReleaseReason.CANCELLED
        )
        return Release(pending, reason, None)
    return None
