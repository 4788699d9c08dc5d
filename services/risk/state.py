"""The risk service's state, its per-account locks, and what its collaborators use of
the service's shell.

`RiskState` holds `services.risk.accounts.RiskBook`, the fold of the business stream and
nothing else (docs/decisions/0002-state-is-the-stream-fold.md): only the follower applies
events to it. A collaborator deciding for an account holds the account's lock from
reading the state until ``shell.publish`` returns (the fold then holds its verdict), so
the next decision of the account is judged against it.
"""

from __future__ import annotations

import asyncio

from libs.contracts.envelope import Event
from libs.contracts.errors import ServiceUnavailable
from services.risk import accounts
from services.risk.accounts import RiskAccount, RiskBook

SERVICE = "risk"


class NoBalance(ServiceUnavailable):
    """No broker balance is known for the account yet, so there is no budget to judge by.

    SERVICE_UNAVAILABLE (market data has not delivered the balance) rather than
    INSUFFICIENT_BUYING_POWER: the user should retry shortly, not think they lack funds.
    """

    def __init__(self, account_id: str) -> None:
        super().__init__(
            f"no broker balance known for account {account_id} yet, so no risk budget: "
            "market data publishes balances every 30 s; try again shortly",
            details={"account_id": account_id},
        )


class RiskState:
    """Every account's risk state as folded from the stream, and a lock per account."""

    def __init__(self) -> None:
        self._book = RiskBook()
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def book(self) -> RiskBook:
        """Every account's state."""
        return self._book

    def apply(self, event: Event) -> None:
        """Fold one event (pure apart from the assignment)."""
        self._book = accounts.apply(self._book, event)

    def account(self, account_id: str) -> RiskAccount:
        """What the service knows of ``account_id``."""
        return self._book.get(account_id)

    def lock(self, account_id: str) -> asyncio.Lock:
        """The account's lock: one decision of the account at a time (in this process)."""
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = asyncio.Lock()
        return lock
