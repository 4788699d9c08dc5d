"""Execution's background work: per-account tasks, sending loops, account streams.

`Background` runs work for an account in a task of its own: a failure is logged (never
lost, never raised at stop), and the work of a partition's accounts is waited for, or
cut short, when the partition is handed to another replica.

`Launcher` starts that work: the sending loop of a recorded order (at most one per
order in this process) and the following of an account's order stream. It is bound to
the sending loop and the feeds after construction, by the composition root: sending
leads back to new orders (an opening fills, its profit targets are placed and sent), so
the objects that decide orders and the one that sends them need each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, Protocol
from uuid import UUID

from structlog.stdlib import BoundLogger

from libs.contracts.execution import OrderStatus
from libs.runtime.tasks import cancel_and_wait
from services.execution.projection import OrderRecord

#: The sending loop of one recorded order: ``drive(account, order_id, resume, decided)``.
Drive = Callable[[str, UUID, bool, float | None], Awaitable[None]]


class Followed(Protocol):
    """The account streams followed (`libs.broker.feeds.AccountFeeds`)."""

    def __contains__(self, account: object) -> bool: ...

    async def ensure(self, account: str, *, wanted: Callable[[str], bool] = ...) -> None: ...


class Background:
    """Tasks working for one account each; a failure is logged with its trace."""

    def __init__(self, log: BoundLogger) -> None:
        self._log = log
        self._accounts: dict[asyncio.Task[None], str] = {}
        """Which account each running task works for (handed over with its partition)."""

    def spawn(self, work: Coroutine[Any, Any, None], name: str, account: str) -> None:
        """Run ``work`` for ``account`` in the background."""
        task = asyncio.create_task(self._guarded(work, name), name=name)
        self._accounts[task] = account
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._accounts.pop(task, None)

    async def _guarded(self, work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:  # background work has no caller to tell: logged
            self._log.exception("background work failed", task=name)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks running now."""
        return list(self._accounts)

    def working_for(self, accounts: Collection[str]) -> list[asyncio.Task[None]]:
        """The running tasks of ``accounts``."""
        return [task for task, account in self._accounts.items() if account in accounts]

    async def hand_over(self, accounts: Collection[str], *, grace_s: float | None) -> None:
        """Let the work of ``accounts`` end within ``grace_s`` (None: not at all), then
        cut short what is left."""
        work = self.working_for(accounts)
        if not work:
            return
        late: Collection[asyncio.Task[None]] = work
        if grace_s is not None:
            _, late = await asyncio.wait(work, timeout=grace_s)
        for task in late:
            self._log.warning("work cut short by the partition hand-over", task=task.get_name())
        await cancel_and_wait(late)

    async def close(self) -> None:
        """Cut every task short."""
        await cancel_and_wait(self.tasks())


def unanswered(record: OrderRecord) -> bool:
    """Whether ``record`` is recorded as sent but the broker never answered for it."""
    return record.status is OrderStatus.SUBMITTED and record.broker_order_id is None


class Launcher:
    """Starts an order's sending loop (once per order at a time) and account following."""

    def __init__(self, background: Background, *, owns: Callable[[str], bool]) -> None:
        """``owns``: whether this replica works for an account (streams follow only those)."""
        self._background = background
        self._owns = owns
        self._sending: set[UUID] = set()
        """Orders whose sending loop runs in this process."""
        self._drive: Drive | None = None
        self._feeds: Followed | None = None

    def bind(self, *, drive: Drive, feeds: Followed) -> None:
        """The sending loop and the account streams (built after the deciding objects)."""
        self._drive = drive
        self._feeds = feeds

    def sending(self, order_id: UUID) -> bool:
        """Whether the order's sending loop runs in this process."""
        return order_id in self._sending

    def start_sending(
        self, account: str, order_id: UUID, *, resume: bool, decided: float | None = None
    ) -> None:
        """Send the recorded order in the background unless its loop runs already.

        ``resume``: it may have been sent already (looked up by client tag first);
        ``decided``: when it was decided (`time.perf_counter`), for the send latency.
        """
        drive = self._drive
        if drive is None:
            raise RuntimeError("the launcher is not bound to the sending loop")
        if order_id in self._sending:
            return
        self._sending.add(order_id)

        async def send() -> None:
            try:
                await drive(account, order_id, resume, decided)
            finally:
                self._sending.discard(order_id)

        self._background.spawn(send(), f"exec-send-{order_id}", account)

    def resume_if_unanswered(self, account: str, record: OrderRecord) -> None:
        """Resolve an order recorded as sent without a broker answer (look up, then send)."""
        if unanswered(record) and record.order_id not in self._sending:
            self.start_sending(account, record.order_id, resume=True)

    def follow(self, account: str) -> None:
        """Follow ``account``'s order stream (in the background) unless followed already."""
        feeds = self._feeds
        if feeds is None:
            raise RuntimeError("the launcher is not bound to the account feeds")
        if account not in feeds:
            self._background.spawn(
                feeds.ensure(account, wanted=self._owns), f"exec-feed-{account}", account
            )
