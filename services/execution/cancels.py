"""Cancelling an order at the broker, and why a superseded exit is cancelled.

A cancel is a request, not an outcome: after asking, the order is read back and its
report recorded (`Reports.report`), so the status published is the broker's. A cancel
the broker refuses because the order already ended (filled, cancelled) is not an error:
the order's status says what happened instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from structlog.stdlib import BoundLogger

from libs.contracts.errors import ErrorKind, InvalidState, SenexError
from libs.contracts.execution import CancelReason, OrderPurpose
from services.execution.ports import OrderBroker
from services.execution.projection import OrderRecord
from services.execution.reporting import Reports

#: Why a working exit is cancelled when a new exit of ``purpose`` supersedes it.
SUPERSEDE_REASON: Mapping[OrderPurpose, CancelReason] = MappingProxyType(
    {
        OrderPurpose.STOP_LOSS: CancelReason.STOP_LOSS,
        OrderPurpose.TIME_EXIT: CancelReason.TIME_EXIT,
        OrderPurpose.MANUAL_EXIT: CancelReason.MANUAL_EXIT,
        OrderPurpose.PROFIT_TARGET: CancelReason.SYSTEM,
    }
)

#: Error kinds with which the broker refuses to cancel an order that already ended.
NOT_CANCELLABLE = frozenset({ErrorKind.ORDER_REJECTED, ErrorKind.VALIDATION_ERROR})


def supersede_reason(purpose: OrderPurpose) -> CancelReason:
    """Why an exit is cancelled for a new exit of ``purpose`` (SYSTEM when none says)."""
    return SUPERSEDE_REASON.get(purpose, CancelReason.SYSTEM)


class Canceller:
    """Asks the broker to cancel an order, then records what the broker says of it."""

    def __init__(self, broker: OrderBroker, reports: Reports, log: BoundLogger) -> None:
        self._broker = broker
        self._reports = reports
        self._log = log

    async def cancel_at_broker(
        self, account: str, record: OrderRecord, reason: CancelReason
    ) -> None:
        """Ask the broker to cancel, then record what its order says now."""
        if record.broker_order_id is None:
            raise InvalidState(f"order {record.order_id} is not acknowledged by the broker yet")
        self._reports.expect_cancel(record.order_id, reason)
        try:
            await self._broker.cancel_order(account, record.broker_order_id)
        except SenexError as exc:
            if exc.kind not in NOT_CANCELLABLE:
                raise
            # Not cancellable any more (filled, already ended): the status below says why.
            self._log.info(
                "broker refused the cancel", order_id=str(record.order_id), error=exc.message
            )
        report = await self._broker.get_order(account, record.broker_order_id)
        await self._reports.report(account, record.order_id, report)
