"""Exits: the monitor's decisions to close spreads, published as ``ExitOrderPlaced``.

- stop loss (replacing the spread's profit target or time exit), and the working stop
  re-priced to the new natural every minute of business time (from each valuation);
- the daily 7-DTE run at 15:45 New York (12:45 on half days), and at start-up for the
  run already due: time exits at the day's ceiling, re-priced day by day;
- ``ClosePosition``: MANUAL_EXIT orders at the natural closing debit now.

Execution places each exit, cancelling the order it supersedes. A decision already
taken (its order id is folded) is not published again; ids come from the core, so a
decision made twice is dropped by the bus and by execution besides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from uuid import UUID

from structlog.stdlib import BoundLogger

from libs.contracts.commands import ClosePosition, ClosePositionReply
from libs.contracts.envelope import Event
from libs.contracts.errors import InvalidState, MarketDataStaleError
from libs.contracts.execution import OrderPurpose
from libs.contracts.market import Quote
from libs.contracts.positions import ExitOrderPlaced, PositionSpread, PositionStatus
from libs.contracts.strategy import SpreadKind
from libs.domain.money import debit_limit
from libs.runtime.following import ServiceShell
from services.position_monitor.core import (
    STOP_LOSS_REPRICE_INTERVAL,
    ExitDecision,
    MissingQuote,
    PositionValuation,
    SpreadValue,
    WorkingExit,
    exit_decision,
    latest_run_day,
    plan_stop_loss,
    plan_time_exits,
    reprice_stop_loss,
    value_spread,
)
from services.position_monitor.event_ids import exit_placed_id
from services.position_monitor.managed import managed_positions
from services.position_monitor.metrics import MonitorCounters
from services.position_monitor.projection import PositionRecord, SpreadRecord
from services.position_monitor.queries import record_of
from services.position_monitor.quotes import Quotes
from services.position_monitor.state import ExitOrder, MonitorState

# --- pure decisions ----------------------------------------------------------------------


def reprice_due(placed: ExitOrder | None, now: datetime) -> bool:
    """Whether a working stop may be re-priced: decided (folded) at least a minute of
    business time before ``now``."""
    return placed is not None and now - placed.decided_at >= STOP_LOSS_REPRICE_INTERVAL


def stop_loss_decisions(
    state: MonitorState, record: PositionRecord, valuation: PositionValuation, now: datetime
) -> list[ExitDecision]:
    """Stops to place or re-price for ``record``'s open spreads after ``valuation``
    (a spread closed by a fill that the next pass books is left alone)."""
    decisions: list[ExitDecision] = []
    for spread in record.spreads:
        if not spread.open:
            continue
        kind = spread.spread.kind
        if state.closing_fill(record.position_id, kind) is not None:
            continue  # closed by a fill the next pass books
        value = valuation.spread(kind)
        assert value is not None
        decision = _stop_loss(state, record.position_id, spread, value, now)
        if decision is not None:
            decisions.append(decision)
    return decisions


def _stop_loss(
    state: MonitorState,
    position_id: UUID,
    spread: SpreadRecord,
    value: SpreadValue,
    now: datetime,
) -> ExitDecision | None:
    working = state.working_exit(spread)
    if working is None or working.purpose is not OrderPurpose.STOP_LOSS:
        return plan_stop_loss(position_id, spread.spread, value, working)
    if not reprice_due(state.exit_order(working.order_id), now):
        return None
    return reprice_stop_loss(position_id, spread.spread, value, working)


def time_exit_inputs(
    state: MonitorState, record: PositionRecord
) -> tuple[list[PositionSpread], dict[SpreadKind, WorkingExit]]:
    """The daily run's inputs for ``record``: its open spreads not closed by a fill yet,
    and the working exit of every open spread."""
    open_spreads = [s for s in record.spreads if s.open]
    working = {s.spread.kind: w for s in open_spreads if (w := state.working_exit(s)) is not None}
    spreads = [
        s.spread
        for s in open_spreads
        if state.closing_fill(record.position_id, s.spread.kind) is None
    ]
    return spreads, working


def closable_spreads(record: PositionRecord, wanted: Iterable[SpreadKind]) -> list[SpreadRecord]:
    """The open spreads a ``ClosePosition`` closes (every open one when ``wanted`` is
    empty); `InvalidState` when the position is not open, not app-managed or has none."""
    if record.status is not PositionStatus.OPEN or record.opened_at is None:
        raise InvalidState(f"position {record.position_id} is not open")
    if not record.app_managed or not record.active:
        raise InvalidState(
            f"position {record.position_id} is not app managed: close it at the broker"
        )
    kinds = set(wanted)
    spreads = [s for s in record.spreads if s.open and (not kinds or s.spread.kind in kinds)]
    if not spreads:
        raise InvalidState(f"position {record.position_id} has no such open spread")
    return spreads


def leg_symbols(spreads: Iterable[SpreadRecord]) -> list[str]:
    """Both legs' symbols of ``spreads``, sorted, once each."""
    return sorted({sym for s in spreads for sym in (s.spread.short_symbol, s.spread.long_symbol)})


def manual_exits(
    state: MonitorState,
    record: PositionRecord,
    spreads: Sequence[SpreadRecord],
    quotes: Mapping[str, Quote],
    requested_by: str | None,
) -> tuple[list[UUID], list[ExitDecision]]:
    """MANUAL_EXIT decisions at the natural closing debit (capped at the width), and the
    order ids of spreads already closing manually (asked twice: kept as they are).
    `MarketDataStaleError` when a leg has no quote."""
    kept: list[UUID] = []
    decisions: list[ExitDecision] = []
    for spread in spreads:
        working = state.working_exit(spread)
        if working is not None and working.purpose is OrderPurpose.MANUAL_EXIT:
            kept.append(working.order_id)  # already closing: asked twice
            continue
        try:
            value = value_spread(spread.spread, quotes)
        except MissingQuote as exc:
            raise MarketDataStaleError(
                f"no quote for {exc.symbol}: cannot price the closing order",
                details={"symbol": exc.symbol},
            ) from None
        price = debit_limit(min(value.closing_cost_natural, spread.spread.width))
        decisions.append(
            exit_decision(
                record.position_id,
                spread.spread,
                OrderPurpose.MANUAL_EXIT,
                price,
                f"closed by {requested_by or 'the user'} at the natural closing debit {-price}",
                working,
            )
        )
    return kept, decisions


# --- publishing ----------------------------------------------------------------------------


class Exits:
    """Publishes exit decisions (the ones not already taken)."""

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

    def _event(self, account: str, decision: ExitDecision) -> ExitOrderPlaced:
        """The ``ExitOrderPlaced`` of ``decision`` (its id derives from the order id)."""
        return ExitOrderPlaced(
            event_id=exit_placed_id(decision.order_id),
            **self._shell.envelope(account),
            **decision.event_fields(),
        )

    async def place(self, account: str, decisions: Iterable[ExitDecision]) -> list[UUID]:
        """Publish the decisions not already taken; the order ids of all of them."""
        ids: list[UUID] = []
        events: list[Event] = []
        for decision in decisions:
            ids.append(decision.order_id)
            if self._state.exit_order(decision.order_id) is None:
                events.append(self._event(account, decision))
                self._counters.exit_decided(decision.purpose)
                self._log.info(
                    "exit decided",
                    account_id=account,
                    position_id=str(decision.position_id),
                    spread=decision.spread_kind.value,
                    purpose=decision.purpose.value,
                    limit_price=str(decision.limit_price),
                    reason=decision.reason,
                )
        await self._shell.publish(*events)
        return ids


class DailyRun:
    """The 7-DTE run: once per run day, time exits for every managed position."""

    def __init__(self, state: MonitorState, exits: Exits, log: BoundLogger) -> None:
        self._state = state
        self._exits = exits
        self._log = log
        self._last_run_day: date | None = None

    async def run_if_due(self, now: datetime) -> None:
        """The run of the latest run day at or before ``now``, unless done already."""
        run_day = latest_run_day(now)
        if run_day is None or run_day == self._last_run_day:
            return
        for account, record in managed_positions(self._state):
            if record.expiration is None:
                continue
            spreads, working = time_exit_inputs(self._state, record)
            decisions = plan_time_exits(
                record.position_id, record.expiration, spreads, working, now
            )
            await self._exits.place(account, decisions)
        self._last_run_day = run_day
        self._log.info("daily exit run done", run_day=run_day.isoformat())


class ManualClose:
    """``ClosePosition``: close spreads now, under the decision loop's lock."""

    def __init__(
        self, state: MonitorState, quotes: Quotes, exits: Exits, lock: asyncio.Lock
    ) -> None:
        self._state = state
        self._quotes = quotes
        self._exits = exits
        self._lock = lock

    async def close_position(self, command: ClosePosition) -> ClosePositionReply:
        """Close spreads now with MANUAL_EXIT orders at the natural closing debit."""
        account = command.account_id
        async with self._lock:
            record = record_of(self._state, account, command.position_id)
            spreads = closable_spreads(record, command.spreads)
            quotes = await self._quotes.fetch(account, leg_symbols(spreads))
            kept, decisions = manual_exits(
                self._state, record, spreads, quotes, command.requested_by
            )
            ids = kept + await self._exits.place(account, decisions)
        return ClosePositionReply(position_id=record.position_id, exit_order_ids=tuple(ids))
