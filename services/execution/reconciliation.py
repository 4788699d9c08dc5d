"""Reconciliation: execution's orders compared with the broker's, and gaps filled.

A poll runs every ``reconcile_interval_s`` (sooner when woken, after a partition is
taken over). It reconciles fully the accounts due: those whose account stream
reconnected (notifications sent while it was down are lost), those suspended (the poll
is the probe that resumes trading), and those of a partition taken over (the previous
owner may have died mid-order). Then, for every account this replica owns, it resumes
the orders recorded without a broker answer and fills the gaps a crash may have left
(a position not opened, a profit target or exit decided but not placed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable
from typing import Protocol
from uuid import UUID

from structlog.stdlib import BoundLogger

from libs.contracts.errors import ErrorKind, SenexError
from libs.contracts.execution import OrderPurpose, OrderStatus
from libs.contracts.partitions import partition_of
from libs.domain.orders import decision_id_of
from libs.runtime.tasks import run_periodically
from services.execution.background import Followed, Launcher
from services.execution.exits import Exits
from services.execution.ports import OrderBroker
from services.execution.positions import Positions
from services.execution.recording import OrderLocks
from services.execution.reporting import Reports
from services.execution.state import ExecutionState
from services.execution.suspension import Suspension


class Feeds(Followed, Protocol):
    """The account streams, as reconciliation reads them (`AccountFeeds`)."""

    def reconnected_accounts(self) -> list[str]: ...


def accounts_in(accounts: Iterable[str], partition: int) -> set[str]:
    """The accounts of ``partition``."""
    return {account for account in accounts if partition_of(account) == partition}


def taken_over(state: ExecutionState, partition: int) -> set[str]:
    """The accounts of ``partition`` to reconcile on taking it: those with an order not
    yet ended."""
    return {a for a in accounts_in(state.accounts(), partition) if state.open_orders(a)}


class Reconciler:
    """Polls the broker for execution's orders and fills what a crash left undone."""

    def __init__(
        self,
        *,
        state: ExecutionState,
        broker: OrderBroker,
        feeds: Feeds,
        reports: Reports,
        suspension: Suspension,
        launcher: Launcher,
        positions: Positions,
        exits: Exits,
        locks: OrderLocks,
        owns: Callable[[str], bool],
        interval_s: float,
        log: BoundLogger,
    ) -> None:
        self._state = state
        self._broker = broker
        self._feeds = feeds
        self._reports = reports
        self._suspension = suspension
        self._launcher = launcher
        self._positions = positions
        self._exits = exits
        self._locks = locks
        self._owns = owns
        self._interval_s = interval_s
        self._log = log
        self._due: set[str] = set()
        """Accounts whose next poll reconciles fully (start-up, reconnect, take-over)."""
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Poll until cancelled (a failed poll is logged; the next one runs on time)."""
        await run_periodically(
            self.reconcile, self._interval_s, what="reconciliation", log=self._log, wake=self._wake
        )

    def take_over(self, partition: int) -> None:
        """Reconcile the partition's accounts with an order not yet ended, at once."""
        self._due |= taken_over(self._state, partition)
        self._wake.set()

    def forget(self, accounts: Collection[str]) -> None:
        """``accounts`` went to another replica: not reconciled here any more."""
        self._due -= set(accounts)

    async def reconcile(self) -> None:
        """One poll: full reconciliation where due, unanswered orders, local gaps."""
        self._due.update(self._feeds.reconnected_accounts())
        due = {a for a in self._due | set(self._state.suspended) if self._owns(a)}
        for account in sorted(due):
            if not self._owns(account):
                continue  # handed over while an earlier account was reconciled
            try:
                await self._reconcile_account(account)
            except SenexError as exc:
                self._log.warning(
                    "reconciliation with the broker failed",
                    account_id=account,
                    kind=exc.kind.value,
                    error=exc.message,
                )
                if exc.kind is ErrorKind.BROKER_UNAVAILABLE:
                    await self._suspension.suspend(account, exc)
            else:
                self._due.discard(account)
        for account in self._state.accounts():
            if not self._owns(account):
                continue
            for record in self._state.open_orders(account):
                self._launcher.resume_if_unanswered(account, record)
            await self._fill_gaps(account)

    async def _reconcile_account(self, account: str) -> None:
        """Compare every open order of ``account`` with the broker; publish what's new."""
        if account not in self._feeds:
            await self._feeds.ensure(account, wanted=self._owns)
        live = await self._broker.get_live_orders(account)
        await self._suspension.broker_answered(account)
        seen: set[UUID] = set()
        for report in live:
            order_id = decision_id_of(report.client_tag or "")
            if order_id is None or self._state.order(order_id) is None:
                continue
            seen.add(order_id)
            await self._reports.report(account, order_id, report)
        for record in self._state.open_orders(account):
            if record.order_id in seen or self._launcher.sending(record.order_id):
                continue
            if record.broker_order_id is not None:
                report = await self._broker.get_order(account, record.broker_order_id)
                await self._reports.report(account, record.order_id, report)
            else:
                self._launcher.start_sending(account, record.order_id, resume=True)
        self._log.info("reconciled", account_id=account, live=len(live), ours=len(seen))

    async def _fill_gaps(self, account: str) -> None:
        """Consequences a crash may have cut short: positions, profit targets, exits."""
        for record in list(self._state.book(account).orders.values()):
            if record.purpose is OrderPurpose.OPEN and record.status is OrderStatus.FILLED:
                async with self._locks.report(record.order_id):
                    await self._positions.ensure_position(account, record)
        for decided in list(self._state.exits.values()):
            if decided.account_id == account and self._state.order(decided.order_id) is None:
                await self._exits.place(account, decided)
