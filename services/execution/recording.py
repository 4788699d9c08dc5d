"""Recording execution's events: per-order locks, envelopes, publishing, decisions.

One consistency rule (docs/decisions/0002-state-is-the-stream-fold.md): execution never
applies its own events. `Recorder.publish` publishes, then returns once the state has
folded the event from the stream, so the next line reads the decision just recorded.
The per-order locks make check-then-publish one step, and now cover that wait too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from libs.contracts.envelope import Causation, Event
from libs.contracts.execution import OrderSubmitted
from libs.domain.lifecycle import ORDER_EVENTS
from libs.runtime.envelopes import Envelopes
from services.execution.background import Launcher
from services.execution.core import OrderSpec
from services.execution.metrics import ExecutionMetrics
from services.execution.state import ExecutionState

#: Publishes events and returns once the state has folded them (`FollowingService.publish`).
Publish = Callable[[Event], Awaitable[None]]


class OrderLocks:
    """Two locks per order id, created on first use."""

    def __init__(self) -> None:
        self._reports: dict[UUID, asyncio.Lock] = {}
        self._decisions: dict[UUID, asyncio.Lock] = {}

    def report(self, order_id: UUID) -> asyncio.Lock:
        """Applying broker reports to the order (and publishing their consequences)."""
        return _lock(self._reports, order_id)

    def decision(self, order_id: UUID) -> asyncio.Lock:
        """Recording the order's decision: exactly one ``OrderSubmitted`` per order id.

        Reactions, commands and reconciliation may decide the same order at once (an
        ExitOrderPlaced published here comes back through the follower while its
        OrderSubmitted is being published): the check and the record are one step.
        """
        return _lock(self._decisions, order_id)


def _lock(locks: dict[UUID, asyncio.Lock], order_id: UUID) -> asyncio.Lock:
    lock = locks.get(order_id)
    if lock is None:
        lock = locks[order_id] = asyncio.Lock()
    return lock


class Recorder:
    """Publishes execution's events (folded before it returns) and counts the orders'."""

    def __init__(
        self,
        state: ExecutionState,
        publish: Publish,
        envelope: Envelopes,
        metrics: ExecutionMetrics,
        launcher: Launcher,
    ) -> None:
        self._state = state
        self._publish = publish
        self.envelope = envelope
        """Envelope fields of an event of an account: ``Event(**envelope(account, cause))``."""
        self._metrics = metrics
        self._launcher = launcher

    def order_envelope(self, account: str, order_id: UUID) -> dict[str, Any]:
        """Envelope of an order's next event: caused by the order's latest event."""
        return self.envelope(account, self._state.causes.get(order_id))

    async def publish(self, event: Event) -> None:
        """Publish ``event`` and wait until the state has folded it; an order event is
        counted by the status the order reached."""
        await self._publish(event)
        if isinstance(event, ORDER_EVENTS):
            record = self._state.order(getattr(event, "order_id"))  # noqa: B009
            if record is not None:
                self._metrics.order_status(record.status)

    async def submit(self, account: str, spec: OrderSpec, cause: Causation) -> None:
        """Record the decision (before any request leaves) and make sure its account is
        followed. The caller holds the order's decision lock."""
        await self.publish(
            OrderSubmitted(**self.envelope(account, cause), **spec.submitted_fields())
        )
        self._launcher.follow(account)
