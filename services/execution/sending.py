"""Sending a recorded order to the broker exactly once, with retries (`RetryPolicy`).

The order's ``OrderSubmitted`` is recorded before this runs. After a timeout or a 5xx
the broker may hold the order, so it is looked up by its client tag before any new
attempt; an unreachable broker fails at once and suspends trading. When the outcome
stays unknown the order is left SUBMITTED (never declared failed): the reconciliation
poll resolves it once the broker answers.

Before each attempt the order is checked (`send_refusal`): an opening only in the
session it was approved for and while the market is open, a re-pricing only while its
original works, and an exit that supersedes another only once that one is cancelled
(here, at the broker) and did not fill first.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from uuid import UUID

from structlog.stdlib import BoundLogger

from libs.broker.models import BrokerOrder
from libs.contracts.errors import ErrorKind, InvalidState, SenexError
from libs.contracts.execution import OrderPurpose, OrderStatus
from libs.runtime.clock import Clock
from libs.runtime.market_hours import is_market_open, ny_date
from services.execution.cancels import Canceller, supersede_reason
from services.execution.core import RetryPolicy, StepAction
from services.execution.core.retry import OUTCOME_UNKNOWN
from services.execution.metrics import ExecutionMetrics
from services.execution.ports import OrderBroker
from services.execution.projection import OrderRecord
from services.execution.reporting import Reports
from services.execution.state import ExecutionState
from services.execution.suspension import Suspension

#: Why an order is not sent: the kind its OrderRejected carries, and the reason.
Refusal = tuple[ErrorKind, str]


class NotYetCancelled(SenexError):
    """The exit being superseded is not confirmed cancelled yet (retried)."""

    KIND = ErrorKind.API_ERROR


def send_refusal(record: OrderRecord, now: datetime, state: ExecutionState) -> Refusal | None:
    """Why ``record`` must not be sent at ``now``, as far as the state tells (the exit it
    supersedes is checked at the broker afterwards)."""
    if record.purpose is OrderPurpose.OPEN:
        if not is_market_open(now):
            return (ErrorKind.MARKET_CLOSED, "the market closed before the order could be sent")
        if ny_date(record.submitted_at) != ny_date(now):
            # A DAY order decided in an earlier session, never answered: its price is
            # stale, so it is not sent now (the reservation is released).
            return (
                ErrorKind.MARKET_CLOSED,
                f"the session of {ny_date(record.submitted_at)} it was approved for ended",
            )
    if record.replaces_order_id is not None:
        old = state.order(record.replaces_order_id)
        if old is None or old.status.is_terminal or old.broker_order_id is None:
            status = "unknown" if old is None else old.status.value
            return (ErrorKind.INVALID_STATE, f"the order it re-prices is {status}")
    return None


def superseded_refusal(superseded: OrderRecord | None) -> Refusal | None:
    """Why an exit is not sent once the exit it supersedes ended: that one filled first."""
    if superseded is not None and superseded.status is OrderStatus.FILLED:
        return (ErrorKind.INVALID_STATE, f"the spread's exit {superseded.order_id} filled first")
    return None


class Sender:
    """Gets recorded orders to the broker, each exactly once (see the module docstring)."""

    def __init__(
        self,
        *,
        state: ExecutionState,
        broker: OrderBroker,
        policy: RetryPolicy,
        clock: Clock,
        reports: Reports,
        canceller: Canceller,
        suspension: Suspension,
        metrics: ExecutionMetrics,
        log: BoundLogger,
    ) -> None:
        self._state = state
        self._broker = broker
        self._policy = policy
        self._clock = clock
        self._reports = reports
        self._canceller = canceller
        self._suspension = suspension
        self._metrics = metrics
        self._log = log

    async def drive(
        self, account: str, order_id: UUID, resume: bool, decided: float | None
    ) -> None:
        """Get one recorded order to the broker exactly once.

        ``resume``: the order may already have been sent (by an earlier process or a
        request whose answer was lost), so it is looked up by its client tag first.
        ``decided``: when it was decided (`time.perf_counter`), for the send latency.
        """
        maybe_sent = resume
        need_lookup = resume
        attempt = 0
        while True:
            record = self._state.order(order_id)
            if (
                record is None
                or record.status is not OrderStatus.SUBMITTED
                or record.broker_order_id is not None
            ):
                return  # a report (stream, lookup) already told where it stands
            attempt += 1
            try:
                if need_lookup:
                    found = await self._broker.find_order_by_client_tag(account, record.client_tag)
                    if found is not None:
                        self._log.info(
                            "order found at the broker by its client tag",
                            order_id=str(order_id),
                            broker_order_id=found.broker_order_id,
                        )
                        await self._suspension.broker_answered(account)
                        await self._reports.sent(account, record, found)
                        return
                    need_lookup = False
                blocked = await self._precheck(account, record)
                if blocked is not None:
                    await self._reports.fail(account, order_id, *blocked)
                    return
                if decided is not None and attempt == 1:
                    self._metrics.sent(time.perf_counter() - decided)
                placed = await self._send(account, record)
            except SenexError as exc:
                step = self._policy.after_failure(attempt, exc.kind)
                if exc.kind in OUTCOME_UNKNOWN:
                    maybe_sent = True
                    need_lookup = True
                self._log.warning(
                    "broker request failed",
                    order_id=str(order_id),
                    attempt=attempt,
                    kind=exc.kind.value,
                    error=exc.message,
                    next=step.action.value,
                )
                self._metrics.error(exc.kind)
                if step.action is StepAction.SUSPEND:
                    await self._suspension.suspend(account, exc)
                    if maybe_sent:
                        self._log.warning(
                            "order outcome unknown; left for reconciliation",
                            order_id=str(order_id),
                        )
                        return
                    await self._reports.fail(account, order_id, exc.kind, exc.message)
                    return
                if step.action is StepAction.GIVE_UP:
                    await self._give_up(account, order_id, exc, attempt, maybe_sent=maybe_sent)
                    return
                if step.action is StepAction.REFRESH_THEN_RETRY:
                    self._broker.expire_session(account)
                self._metrics.retry(exc.kind)
                await asyncio.sleep(step.delay_s)
                continue
            await self._suspension.broker_answered(account)
            await self._reports.sent(account, record, placed)
            return

    async def _give_up(
        self, account: str, order_id: UUID, exc: SenexError, attempts: int, *, maybe_sent: bool
    ) -> None:
        """Final failure; when the broker may hold the order, only after a last lookup."""
        if maybe_sent:
            record = self._state.order(order_id)
            assert record is not None
            try:
                found = await self._broker.find_order_by_client_tag(account, record.client_tag)
            except SenexError as lookup_error:
                self._log.warning(
                    "order outcome unknown; left for reconciliation",
                    order_id=str(order_id),
                    kind=lookup_error.kind.value,
                    error=lookup_error.message,
                )
                return
            if found is not None:
                await self._reports.sent(account, record, found)
                return
        message = exc.message
        if attempts > 1:
            message = f"gave up after {attempts} attempts: {exc.message}"
        await self._reports.fail(
            account, order_id, exc.kind, message, exc.details.get("broker_order_id")
        )
        if exc.kind is ErrorKind.AUTH_FAILED:
            await self._suspension.suspend(account, exc)

    async def _precheck(self, account: str, record: OrderRecord) -> Refusal | None:
        """Why the order must not be sent now, if so; clears a superseded exit first."""
        refused = send_refusal(record, self._clock.now(), self._state)
        if refused is not None:
            return refused
        decided = self._state.exits.get(record.order_id)
        if decided is None or decided.replaces_order_id is None:
            return None
        superseded = self._state.order(decided.replaces_order_id)
        if superseded is not None and not superseded.status.is_terminal:
            if superseded.broker_order_id is None:
                raise NotYetCancelled(
                    f"the exit {superseded.order_id} it supersedes is not acknowledged yet"
                )
            await self._canceller.cancel_at_broker(
                account, superseded, supersede_reason(record.purpose)
            )
            superseded = self._state.order(superseded.order_id)
            if superseded is not None and not superseded.status.is_terminal:
                raise NotYetCancelled(
                    f"the exit {superseded.order_id} it supersedes is still "
                    f"{superseded.status.value}"
                )
        return superseded_refusal(superseded)

    async def _send(self, account: str, record: OrderRecord) -> BrokerOrder:
        request = record.request()
        if record.replaces_order_id is not None:
            old = self._state.order(record.replaces_order_id)
            if old is None or old.broker_order_id is None:  # send_refusal refused this already
                raise InvalidState(f"order {record.order_id} has no working order to re-price")
            return await self._broker.replace_order(account, old.broker_order_id, request)
        return await self._broker.place_order(account, request)
