"""Broker reports into events: what the broker says about an order, recorded once.

Every broker report (a place answer, a lookup by client tag, an account-stream
notification, a reconciliation poll) goes through `Reports.report` under the order's
lock: `lifecycle_facts` says what the events so far do not say yet, each fact becomes
its event (`FACT_EVENTS`), and the consequences follow (a filled opening opens its
position, a partly filled one is flagged, a failed exit flags its position).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol
from uuid import UUID

from structlog.stdlib import BoundLogger

from libs.broker.models import BrokerOrder
from libs.contracts.envelope import Event
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
)
from libs.contracts.positions import AttentionReason, PositionNeedsAttention
from libs.domain.orders import decision_id_of
from services.execution.core import (
    Accepted,
    Cancelled,
    Expired,
    Fact,
    Fills,
    Rejected,
    Replaced,
    lifecycle_facts,
)
from services.execution.positions import Positions
from services.execution.projection import OrderRecord
from services.execution.recording import OrderLocks, Recorder
from services.execution.state import ExecutionState


class FactContext(Protocol):
    """What turning a fact into its event reads besides the fact and the order."""

    def cancel_reason(self, order_id: UUID) -> CancelReason:
        """Why the order was cancelled (a cancel Senex asked for), else BROKER."""
        ...

    def replacement_of(self, account: str, order_id: UUID) -> UUID | None:
        """The order of ``account`` recorded as replacing ``order_id``, if any."""
        ...


def _accepted(fact: Accepted, env: dict[str, Any], record: OrderRecord, _: FactContext) -> Event:
    return OrderAccepted(**env, order_id=record.order_id, broker_order_id=fact.broker_order_id)


def _fills(fact: Fills, env: dict[str, Any], record: OrderRecord, _: FactContext) -> Event:
    kind = OrderFilled if fact.complete else OrderPartiallyFilled
    return kind(
        **env, order_id=record.order_id, broker_order_id=fact.broker_order_id, legs=fact.fills
    )


def _rejected(fact: Rejected, env: dict[str, Any], record: OrderRecord, _: FactContext) -> Event:
    return OrderRejected(
        **env,
        order_id=record.order_id,
        broker_order_id=fact.broker_order_id,
        kind=ErrorKind.ORDER_REJECTED,
        reason=fact.reason,
    )


def _cancelled(
    fact: Cancelled, env: dict[str, Any], record: OrderRecord, context: FactContext
) -> Event:
    return OrderCancelled(
        **env,
        order_id=record.order_id,
        broker_order_id=fact.broker_order_id,
        reason=context.cancel_reason(record.order_id),
        message=fact.message,
    )


def _expired(fact: Expired, env: dict[str, Any], record: OrderRecord, _: FactContext) -> Event:
    return OrderExpired(**env, order_id=record.order_id, broker_order_id=fact.broker_order_id)


def _replaced(
    fact: Replaced, env: dict[str, Any], record: OrderRecord, context: FactContext
) -> Event:
    """OrderReplaced when Senex recorded the replacement; else the broker replaced it
    outside Senex, and for Senex the order ended cancelled."""
    replacement = context.replacement_of(env["account_id"], record.order_id)
    if replacement is None:
        return OrderCancelled(
            **env,
            order_id=record.order_id,
            broker_order_id=fact.broker_order_id,
            reason=CancelReason.BROKER,
            message=(
                f"replaced at the broker outside Senex by order {fact.replacement_broker_order_id}"
            ),
        )
    return OrderReplaced(
        **env,
        order_id=record.order_id,
        replacement_order_id=replacement,
        broker_order_id=fact.broker_order_id,
    )


#: The event of each lifecycle fact: ``builder(fact, envelope, order, context)``.
FACT_EVENTS: Mapping[type, Callable[[Any, dict[str, Any], OrderRecord, FactContext], Event]] = {
    Accepted: _accepted,
    Fills: _fills,
    Rejected: _rejected,
    Cancelled: _cancelled,
    Expired: _expired,
    Replaced: _replaced,
}


def fact_event(fact: Fact, env: dict[str, Any], record: OrderRecord, context: FactContext) -> Event:
    """The event recording ``fact`` about ``record``, with the envelope ``env``."""
    return FACT_EVENTS[type(fact)](fact, env, record, context)


def failed_exit_attention(
    record: OrderRecord, reason: str, env: dict[str, Any]
) -> PositionNeedsAttention | None:
    """The flag of a position whose exit ``record`` failed (None: not an exit of one)."""
    if not record.purpose.is_exit or record.position_id is None:
        return None
    return PositionNeedsAttention(
        **env,
        position_id=record.position_id,
        underlying=record.underlying,
        reason=AttentionReason.ORDER_FAILED,
        message=f"the {record.purpose.value} order for {record.spread_kind} failed: {reason}",
        order_id=record.order_id,
        app_managed=True,
    )


class Reports:
    """Records what the broker says about execution's orders, and its consequences."""

    def __init__(
        self,
        state: ExecutionState,
        recorder: Recorder,
        locks: OrderLocks,
        positions: Positions,
        log: BoundLogger,
    ) -> None:
        self._state = state
        self._recorder = recorder
        self._locks = locks
        self._positions = positions
        self._log = log
        self._cancel_reasons: dict[UUID, CancelReason] = {}
        """Why Senex asked the broker to cancel an order (read by its OrderCancelled)."""

    def expect_cancel(self, order_id: UUID, reason: CancelReason) -> None:
        """Senex asks the broker to cancel ``order_id`` for ``reason``."""
        self._cancel_reasons[order_id] = reason

    def cancel_reason(self, order_id: UUID) -> CancelReason:
        """The reason Senex gave for cancelling (once), else BROKER."""
        return self._cancel_reasons.pop(order_id, CancelReason.BROKER)

    def replacement_of(self, account: str, order_id: UUID) -> UUID | None:
        """The order of ``account`` recorded as replacing ``order_id``, if any."""
        return next(
            (
                o.order_id
                for o in self._state.book(account).orders.values()
                if o.replaces_order_id == order_id
            ),
            None,
        )

    async def on_notification(self, account: str, report: BrokerOrder) -> None:
        """An account-stream notification: recorded when it is about an order of ours."""
        order_id = decision_id_of(report.client_tag or "")
        if order_id is None or self._state.order(order_id) is None:
            return  # not an order of ours (placed outside Senex)
        await self.report(account, order_id, report)

    async def report(self, account: str, order_id: UUID, report: BrokerOrder) -> None:
        """Publish what ``report`` adds to the order, then its consequences."""
        async with self._locks.report(order_id):
            record = self._state.order(order_id)
            if record is None:
                self._log.warning("report for an unknown order", order_id=str(order_id))
                return
            for fact in lifecycle_facts(record.status, record.fills, report):
                await self._publish_fact(account, record, fact)
            record = self._state.order(order_id)
            assert record is not None
            if record.purpose is OrderPurpose.OPEN:
                if record.status is OrderStatus.FILLED:
                    await self._positions.ensure_position(account, record)
                elif record.fills:
                    await self._positions.flag_partial(account, record)

    async def _publish_fact(self, account: str, record: OrderRecord, fact: Fact) -> None:
        env = self._recorder.order_envelope(account, record.order_id)
        event = fact_event(fact, env, record, self)
        await self._recorder.publish(event)
        self._log.info("order event", order_id=str(record.order_id), event_type=event.type)
        if isinstance(fact, Rejected):
            await self.exit_failed(account, record.order_id, fact.reason)

    async def sent(self, account: str, record: OrderRecord, report: BrokerOrder) -> None:
        """The broker holds ``record`` as ``report``: a replacement ends its original."""
        if record.replaces_order_id is not None:
            old_id = record.replaces_order_id
            async with self._locks.report(old_id):
                old = self._state.order(old_id)
                if old is not None and not old.status.is_terminal:
                    await self._recorder.publish(
                        OrderReplaced(
                            **self._recorder.order_envelope(account, old_id),
                            order_id=old_id,
                            replacement_order_id=record.order_id,
                            broker_order_id=old.broker_order_id,
                        )
                    )
        await self.report(account, record.order_id, report)

    async def fail(
        self,
        account: str,
        order_id: UUID,
        kind: ErrorKind,
        reason: str,
        broker_order_id: str | None = None,
    ) -> None:
        """The order never got (or stays) to the broker: OrderRejected with ``kind``."""
        async with self._locks.report(order_id):
            record = self._state.order(order_id)
            if record is None or record.status.is_terminal:
                return
            await self._recorder.publish(
                OrderRejected(
                    **self._recorder.order_envelope(account, order_id),
                    order_id=order_id,
                    broker_order_id=broker_order_id or record.broker_order_id,
                    kind=kind,
                    reason=reason,
                )
            )
            self._log.warning(
                "order failed", order_id=str(order_id), kind=kind.value, reason=reason
            )
            await self.exit_failed(account, order_id, reason)

    async def exit_failed(self, account: str, order_id: UUID, reason: str) -> None:
        """A rejected exit leaves its spread without a working exit: flag the position."""
        record = self._state.order(order_id)
        if record is None:
            return
        flag = failed_exit_attention(
            record, reason, self._recorder.order_envelope(account, order_id)
        )
        if flag is not None:
            await self._recorder.publish(flag)
