"""What the strategy knows of each account (pure): link, settings, balance, open positions.

Settings come from ``AccountSettingsChanged`` (a whole snapshot each time); until the
first one an account has `DEFAULT_SETTINGS` (conservative, automation off, QQQ and SPY).
The balance is the latest ``BalanceUpdated`` by the broker's timestamp. Open
app-managed positions come from ``PositionOpened``; ``SpreadClosed`` removes one spread,
``PositionClosed`` the position; a ``PositionNeedsAttention`` saying the position is not
app managed (a partly filled opening) keeps it out of the decision until
``PositionAttentionCleared``. Handlers ignore an event id already applied (balances,
which are idempotent by the broker's timestamp, are not remembered by id).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from libs.contracts.account import (
    AccountLinked,
    AccountSettings,
    AccountSettingsChanged,
    BalanceUpdated,
    TradingMode,
)
from libs.contracts.envelope import Event
from libs.contracts.positions import (
    PositionAttentionCleared,
    PositionClosed,
    PositionNeedsAttention,
    PositionOpened,
    SpreadClosed,
)
from libs.contracts.risk import RiskTemplate
from libs.contracts.strategy import SpreadKind
from libs.projections import AppliedIds, Handlers, Projection
from libs.projections.framework import PMap

#: Settings of an account before its first ``AccountSettingsChanged``.
DEFAULT_SETTINGS = AccountSettings(risk_template=RiskTemplate.CONSERVATIVE)


@dataclass(frozen=True, slots=True)
class Balance:
    """The broker's latest balance figures."""

    derivative_buying_power: Decimal
    net_liquidating_value: Decimal
    broker_updated_at: datetime


@dataclass(frozen=True, slots=True)
class OpenSpread:
    """One open credit spread of a position."""

    type: str
    """``put`` or ``call``."""
    short_strike: Decimal
    long_strike: Decimal
    quantity: int


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """An open position and its spreads still open."""

    position_id: UUID
    underlying: str
    expiration: date
    max_risk: Decimal
    """As opened: kept until the position closes (conservative for the budget)."""
    spreads: PMap[SpreadKind, OpenSpread] = field(default_factory=PMap)


@dataclass(frozen=True, slots=True)
class AccountState:
    """One account as the strategy sees it."""

    account_id: str
    user_id: str | None = None
    mode: TradingMode | None = None
    settings: AccountSettings = DEFAULT_SETTINGS
    settings_known: bool = False
    """False until the first AccountSettingsChanged (``settings`` are the defaults)."""
    balance: Balance | None = None
    positions: PMap[UUID, OpenPosition] = field(default_factory=PMap)
    unmanaged: frozenset[UUID] = frozenset()
    """Positions flagged as not app managed (excluded from decisions)."""
    applied: AppliedIds = field(default=frozenset(), repr=False)

    @property
    def managed_positions(self) -> tuple[OpenPosition, ...]:
        """Open app-managed positions, in the order they were opened."""
        return tuple(p for p in self.positions.values() if p.position_id not in self.unmanaged)


@dataclass(frozen=True, slots=True)
class AccountBook:
    """Every account the strategy has heard of, by account id."""

    accounts: PMap[str, AccountState] = field(default_factory=PMap)

    def get(self, account_id: str) -> AccountState:
        """The account's state (an empty one when nothing is known yet)."""
        return self.accounts.get(account_id) or AccountState(account_id)


_handlers: Handlers[AccountBook] = Handlers()


def _update(book: AccountBook, event: Event, change: AccountState) -> AccountBook:
    state = replace(change, applied=change.applied | {event.event_id})
    return replace(book, accounts=book.accounts.set(state.account_id, state))


def _fresh(book: AccountBook, event: Event) -> AccountState | None:
    """The event's account, or None when the event was applied already."""
    assert event.account_id is not None  # account events only
    state = book.get(event.account_id)
    return None if event.event_id in state.applied else state


@_handlers.on(AccountLinked)
def _linked(book: AccountBook, event: AccountLinked) -> AccountBook:
    state = _fresh(book, event)
    if state is None:
        return book
    return _update(book, event, replace(state, user_id=event.user_id, mode=event.mode))


@_handlers.on(AccountSettingsChanged)
def _settings(book: AccountBook, event: AccountSettingsChanged) -> AccountBook:
    state = _fresh(book, event)
    if state is None:
        return book
    return _update(book, event, replace(state, settings=event.settings, settings_known=True))


@_handlers.on(BalanceUpdated)
def _balance(book: AccountBook, event: BalanceUpdated) -> AccountBook:
    # Idempotent without remembering the id (balances arrive every 30 s, forever): the
    # latest by the broker's timestamp wins, and an older one delivered late is ignored.
    assert event.account_id is not None
    state = book.get(event.account_id)
    if state.balance is not None and state.balance.broker_updated_at > event.broker_updated_at:
        return book
    balance = Balance(
        derivative_buying_power=event.derivative_buying_power,
        net_liquidating_value=event.net_liquidating_value,
        broker_updated_at=event.broker_updated_at,
    )
    if balance == state.balance:
        return book
    state = replace(state, balance=balance)
    return replace(book, accounts=book.accounts.set(state.account_id, state))


@_handlers.on(PositionOpened)
def _opened(book: AccountBook, event: PositionOpened) -> AccountBook:
    state = _fresh(book, event)
    if state is None:
        return book
    spreads: PMap[SpreadKind, OpenSpread] = PMap(
        (
            s.kind,
            OpenSpread(
                type=s.kind.option_type.value.lower(),
                short_strike=s.short_symbol.strike,
                long_strike=s.long_symbol.strike,
                quantity=s.quantity,
            ),
        )
        for s in event.spreads
    )
    position = OpenPosition(
        position_id=event.position_id,
        underlying=event.underlying,
        expiration=event.expiration,
        max_risk=event.max_risk,
        spreads=spreads,
    )
    return _update(
        book, event, replace(state, positions=state.positions.set(event.position_id, position))
    )


@_handlers.on(SpreadClosed)
def _spread_closed(book: AccountBook, event: SpreadClosed) -> AccountBook:
    state = _fresh(book, event)
    if state is None:
        return book
    position = state.positions.get(event.position_id)
    if position is None or event.spread_kind not in position.spreads:
        return _update(book, event, state)
    remaining = PMap((k, v) for k, v in position.spreads.items() if k is not event.spread_kind)
    positions = state.positions.set(event.position_id, replace(position, spreads=remaining))
    return _update(book, event, replace(state, positions=positions))


@_handlers.on(PositionClosed)
def _position_closed(book: AccountBook, event: PositionClosed) -> AccountBook:
    state = _fresh(book, event)
    if state is None:
        return book
    positions = PMap((k, v) for k, v in state.positions.items() if k != event.position_id)
    return _update(book, event, replace(state, positions=positions))


@_handlers.on(PositionNeedsAttention)
def _attention(book: AccountBook, event: PositionNeedsAttention) -> AccountBook:
    state = _fresh(book, event)
    if state is None:
        return book
    unmanaged = (
        state.unmanaged - {event.position_id}
        if event.app_managed
        else state.unmanaged | {event.position_id}
    )
    return _update(book, event, replace(state, unmanaged=unmanaged))


@_handlers.on(PositionAttentionCleared)
def _cleared(book: AccountBook, event: PositionAttentionCleared) -> AccountBook:
    state = _fresh(book, event)
    if state is None:
        return book
    return _update(book, event, replace(state, unmanaged=state.unmanaged - {event.position_id}))


#: The accounts projection, as the strategy folds it.
ACCOUNTS: Projection[AccountBook] = Projection("strategy_accounts", AccountBook(), _handlers)


def apply(book: AccountBook, event: Event) -> AccountBook:
    """The book after ``event`` (unchanged for events it does not fold)."""
    return _handlers.apply(book, event)
