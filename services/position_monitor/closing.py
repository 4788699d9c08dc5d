"""Closing fills: a completely filled exit closes its spread, the last one its position.

Every pass books what execution reported: ``SpreadClosed`` with the realised P&L of
each spread whose exit filled completely, then ``PositionClosed`` once no spread is
open. For every opened position, managed or not: a fill is a fact. Fills that do not
close their spread exactly are logged and nothing is booked on a guess (the broker sync
flags the holdings).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from structlog.stdlib import BoundLogger

from libs.contracts.envelope import Event
from libs.contracts.positions import PositionClosed, SpreadClosed
from libs.runtime.following import ServiceShell
from services.position_monitor.core import SpreadClose, close_by_fill, position_realized_pnl
from services.position_monitor.core.errors import InvalidFill
from services.position_monitor.event_ids import position_closed_id, spread_closed_id
from services.position_monitor.metrics import MonitorCounters
from services.position_monitor.projection import PositionRecord
from services.position_monitor.state import ExitOrder, MonitorState


@dataclass(frozen=True)
class UnclosingFill:
    """A completely filled exit whose fills do not close its spread exactly."""

    order: ExitOrder
    error: InvalidFill


@dataclass(frozen=True)
class ClosePlan:
    """What the fills folded so far close of one open position."""

    closes: tuple[SpreadClose, ...]
    """Spreads closed by a fill not booked yet, in the position's spread order."""
    unclosing: tuple[UnclosingFill, ...]
    realized: tuple[Decimal, ...]
    """Realised P&L of every closed spread: booked before, then ``closes``."""
    position_closed: bool
    """No spread stays open: the position closes (also when everything was booked
    before, after a crash between the last ``SpreadClosed`` and ``PositionClosed``)."""


def plan_closes(state: MonitorState, record: PositionRecord) -> ClosePlan:
    """The spreads of ``record`` that the folded fills close, and whether it closes."""
    realized = [s.realized_pnl for s in record.spreads if not s.open and s.realized_pnl is not None]
    closes: list[SpreadClose] = []
    unclosing: list[UnclosingFill] = []
    still_open = 0
    for spread in record.spreads:
        if not spread.open:
            continue
        filled = state.closing_fill(record.position_id, spread.spread.kind)
        if filled is None:
            still_open += 1
            continue
        try:
            close = close_by_fill(spread.spread, filled.purpose, filled.order_id, filled.fills)
        except InvalidFill as exc:
            unclosing.append(UnclosingFill(filled, exc))
            still_open += 1
            continue
        closes.append(close)
        realized.append(close.realized_pnl)
    return ClosePlan(tuple(closes), tuple(unclosing), tuple(realized), still_open == 0)


class FillCloser:
    """Publishes ``SpreadClosed`` and ``PositionClosed`` for the fills execution reported."""

    def __init__(
        self,
        shell: ServiceShell,
        state: MonitorState,
        counters: MonitorCounters,
        log: BoundLogger,
    ) -> None:
        self._shell = shell
        self._state = state
        self._counters = counters
        self._log = log

    async def close_filled(self) -> None:
        """Book every open position's closing fills (one publish per position)."""
        for account, record in list(self._state.open_positions()):
            plan = plan_closes(self._state, record)
            for unclosing in plan.unclosing:
                self._log.error(
                    "a filled exit does not close its spread",
                    position_id=str(record.position_id),
                    order_id=str(unclosing.order.order_id),
                    error=str(unclosing.error),
                )
            events: list[Event] = []
            for close in plan.closes:
                events.append(self._spread_closed(account, record, close))
                self._counters.spread_closed(close.reason)
            if plan.position_closed:
                events.append(
                    PositionClosed(
                        event_id=position_closed_id(record.position_id),
                        **self._shell.envelope(account, events[-1].causation() if events else None),
                        position_id=record.position_id,
                        realized_pnl=position_realized_pnl(plan.realized),
                    )
                )
            await self._shell.publish(*events)

    def _spread_closed(
        self, account: str, record: PositionRecord, close: SpreadClose
    ) -> SpreadClosed:
        self._log.info(
            "spread closed",
            account_id=account,
            position_id=str(record.position_id),
            spread=close.spread_kind.value,
            reason=close.reason.value,
            realized_pnl=str(close.realized_pnl),
        )
        return SpreadClosed(
            event_id=spread_closed_id(record.position_id, close.spread_kind),
            **self._shell.envelope(account),
            position_id=record.position_id,
            **close.event_fields(),
        )
