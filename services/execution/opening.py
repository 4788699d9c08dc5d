"""The opening order of an approved, reserved suggestion (reaction to ``RiskReserved``).

One opening per reservation: its order id derives from the reservation, and recording
it (``OrderSubmitted``) happens once under its decision lock. Outside regular market
hours it is recorded and refused at once (MARKET_CLOSED), so the reservation is
released; a reservation released already, or whose suggestion is unknown, gets none.
"""

from __future__ import annotations

import time
from datetime import datetime

from structlog.stdlib import BoundLogger

from libs.contracts.errors import ErrorKind
from libs.contracts.risk import RiskReserved
from libs.domain.orders import opening_order_id
from libs.runtime.clock import Clock, new_york_time
from libs.runtime.market_hours import is_market_open
from services.execution.background import Launcher
from services.execution.core import InvalidOrder, OrderSpec, opening_order
from services.execution.metrics import ExecutionMetrics
from services.execution.recording import OrderLocks, Recorder
from services.execution.reporting import Reports
from services.execution.state import ExecutionState


def market_closed_reason(now: datetime) -> str | None:
    """Why an opening decided at ``now`` is not sent (None: the market is open)."""
    if is_market_open(now):
        return None
    return (
        f"the market is closed ({new_york_time(now):%Y-%m-%d %H:%M} New York): "
        "orders are only sent in regular market hours"
    )


class Opener:
    """Records and sends the opening order of each reservation, once."""

    def __init__(
        self,
        *,
        state: ExecutionState,
        recorder: Recorder,
        reports: Reports,
        locks: OrderLocks,
        launcher: Launcher,
        clock: Clock,
        metrics: ExecutionMetrics,
        log: BoundLogger,
    ) -> None:
        self._state = state
        self._recorder = recorder
        self._reports = reports
        self._locks = locks
        self._launcher = launcher
        self._clock = clock
        self._metrics = metrics
        self._log = log

    async def on_reserved(self, event: RiskReserved) -> None:
        """The opening order of an approved, reserved suggestion (once per reservation)."""
        decided = time.perf_counter()
        account = event.account_id
        order_id = opening_order_id(event.reservation_id)
        async with self._locks.decision(order_id):
            record = self._state.order(order_id)
            if record is not None:
                self._launcher.resume_if_unanswered(account, record)
                return
            spec = self._opening_spec(event)
            if spec is None:
                return
            await self._recorder.submit(account, spec, event.causation())
        closed = market_closed_reason(self._clock.now())
        if closed is not None:
            await self._reports.fail(account, order_id, ErrorKind.MARKET_CLOSED, closed)
            return
        self._launcher.start_sending(account, order_id, resume=False, decided=decided)

    def _opening_spec(self, event: RiskReserved) -> OrderSpec | None:
        """The opening order of a reservation, or None (logged) when none can be built."""
        order_id = opening_order_id(event.reservation_id)
        if event.reservation_id in self._state.released:
            self._log.info("reservation already released; no order", order_id=str(order_id))
            return None
        suggestion = self._state.suggestions.get(event.suggestion_id)
        if suggestion is None:
            # Nothing to build the legs from: the reservation is released when the
            # suggestion expires. Logged loudly, counted.
            self._log.error(
                "RiskReserved for an unknown suggestion; no order placed",
                suggestion_id=str(event.suggestion_id),
                reservation_id=str(event.reservation_id),
            )
            self._metrics.error(ErrorKind.NOT_FOUND)
            return None
        try:
            return opening_order(
                suggestion, event.limit_credit, reservation_id=event.reservation_id
            )
        except InvalidOrder as exc:
            self._log.error("cannot build the opening order", error=str(exc))
            self._metrics.error(ErrorKind.VALIDATION_ERROR)
            return None
