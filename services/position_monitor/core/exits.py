"""Exit decisions per spread: stop loss, the 7-DTE time exit, closing fills (DOMAIN.md 6).

Every decision is an `ExitDecision`: the fields of one ``ExitOrderPlaced`` (a GTC limit
order of BUY_TO_CLOSE short / SELL_TO_CLOSE long legs at a negative, tick-rounded price)
that supersedes the spread's working exit, if any. Execution cancels the superseded
order before it places the new one.

Which exit wins when several apply (our rule; DOMAIN.md only names the pairs):

- stop loss replaces a working profit target or time exit: a time exit still working
  is priced below the natural (a limit at or above it would have filled), so the stop,
  at the natural, is the more marketable of the two;
- the time exit replaces a working profit target, and re-prices itself daily; it leaves
  a working stop loss (already at the natural, re-priced every minute) and a user's
  manual exit alone;
- no rule replaces a manual exit.

No debit ever exceeds the spread's width: a credit spread is never worth more than its
width, so paying more can only lose money. That caps the stop loss (whose natural can
exceed the width in a wide market) and the time-exit ceilings (a ceiling above the
width is only possible with an entry credit above the width, i.e. bad input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from libs.contracts.execution import (
    LegFill,
    OrderAction,
    OrderLeg,
    OrderPurpose,
    TimeInForce,
    check_order_shape,
)
from libs.contracts.positions import CloseReason, PositionSpread
from libs.contracts.strategy import SpreadKind
from libs.domain.money import TICK, debit_limit, is_on_tick, money, percent
from libs.domain.trident import closing_legs
from libs.runtime.clock import NEW_YORK, require_aware
from libs.runtime.market_hours import is_half_day, is_session, ny_date
from services.position_monitor.core.errors import InvalidExit, InvalidFill
from services.position_monitor.core.ids import exit_order_id
from services.position_monitor.core.valuation import SpreadValue, realized_pnl

#: Stop loss when the closing cost at mid reaches this multiple of the entry credit.
STOP_LOSS_MULTIPLE = Decimal(2)
#: The working stop-loss order is re-priced to the natural this often (DOMAIN.md 6).
STOP_LOSS_REPRICE_INTERVAL = timedelta(minutes=1)
#: The time exit starts at this many days to expiration (system-controlled).
TIME_EXIT_DTE = 7
#: Fraction of the max loss added to the entry credit, by DTE; 3 DTE or less: the width.
TIME_EXIT_LADDER: Mapping[int, Decimal] = {
    7: Decimal(0),
    6: Decimal("0.70"),
    5: Decimal("0.80"),
    4: Decimal("0.90"),
}
#: The daily exit run, New York time (15 minutes before the close).
DAILY_RUN = time(15, 45)
#: The daily exit run on a half day (close at 13:00).
HALF_DAY_RUN = time(12, 45)
#: How far back `latest_run_day` looks for a session (covers any exchange closure run).
_RUN_LOOKBACK_DAYS = 14


@dataclass(frozen=True, slots=True)
class WorkingExit:
    """The spread's exit order currently working at the broker."""

    order_id: UUID
    purpose: OrderPurpose
    limit_price: Decimal
    """Signed (negative: a debit)."""


@dataclass(frozen=True, slots=True)
class ExitDecision:
    """One ``ExitOrderPlaced``, minus the envelope."""

    position_id: UUID
    spread_kind: SpreadKind
    order_id: UUID
    purpose: OrderPurpose
    legs: tuple[OrderLeg, ...]
    limit_price: Decimal
    """Signed: negative, a debit, on the tick."""
    reason: str
    replaces_order_id: UUID | None = None
    time_in_force: TimeInForce = TimeInForce.GTC

    def event_fields(self) -> dict[str, Any]:
        """The payload of ``ExitOrderPlaced``."""
        return {
            "position_id": self.position_id,
            "spread_kind": self.spread_kind,
            "order_id": self.order_id,
            "purpose": self.purpose,
            "legs": self.legs,
            "limit_price": self.limit_price,
            "time_in_force": self.time_in_force,
            "replaces_order_id": self.replaces_order_id,
            "reason": self.reason,
        }


def exit_decision(
    position_id: UUID,
    spread: PositionSpread,
    purpose: OrderPurpose,
    limit_price: Decimal,
    reason: str,
    replaces: WorkingExit | None,
) -> ExitDecision:
    """A closing order for ``spread``; raises `InvalidExit` unless it is a valid exit.

    Valid: an exit purpose, closing legs only, GTC, a negative price on the tick.
    """
    if not purpose.is_exit:
        raise InvalidExit("an exit order's purpose is not OPEN")
    legs = closing_legs(spread.short_symbol, spread.long_symbol, spread.quantity)
    try:
        check_order_shape(purpose, legs, TimeInForce.GTC)
    except ValueError as exc:
        raise InvalidExit(str(exc)) from exc
    if not is_on_tick(limit_price):
        raise InvalidExit(f"limit price {limit_price} is not on the {TICK} tick")
    if limit_price >= 0:
        raise InvalidExit(f"closing a credit spread is a debit (negative price), got {limit_price}")
    replaces_id = replaces.order_id if replaces is not None else None
    return ExitDecision(
        position_id=position_id,
        spread_kind=spread.kind,
        order_id=exit_order_id(position_id, spread.kind, purpose, replaces_id),
        purpose=purpose,
        legs=legs,
        limit_price=limit_price,
        reason=reason,
        replaces_order_id=replaces_id,
    )


def _capped(debit: Decimal, spread: PositionSpread) -> Decimal:
    """``debit`` but never more than the width (see the module docstring)."""
    return min(debit, spread.width)


# --- stop loss ---------------------------------------------------------------------------


def stop_loss_triggered(spread: PositionSpread, value: SpreadValue) -> bool:
    """Closing cost at mid >= 2 x entry credit (the boundary itself triggers).

    A spread whose entry credit is not positive has no stop loss: 2 x a non-positive
    credit would trigger at once on any quote. The 7-DTE exit still closes it.
    """
    if spread.entry_credit <= 0:
        return False
    return value.closing_cost_mid >= STOP_LOSS_MULTIPLE * spread.entry_credit


def stop_loss_price(spread: PositionSpread, natural: Decimal) -> Decimal:
    """The stop's limit: the natural closing debit, capped at the width, rounded up."""
    return debit_limit(_capped(natural, spread))


def plan_stop_loss(
    position_id: UUID,
    spread: PositionSpread,
    value: SpreadValue,
    working: WorkingExit | None,
) -> ExitDecision | None:
    """The stop-loss exit of ``spread`` if it is due now; None otherwise.

    Due when triggered and the working exit is none, a profit target or a time exit
    (the stop supersedes it). A working stop is re-priced by `reprice_stop_loss`.
    """
    if value.kind is not spread.kind:
        raise ValueError(f"value of {value.kind} given for {spread.kind}")
    if not stop_loss_triggered(spread, value):
        return None
    if working is not None and working.purpose not in (
        OrderPurpose.PROFIT_TARGET,
        OrderPurpose.TIME_EXIT,
    ):
        return None
    price = stop_loss_price(spread, value.closing_cost_natural)
    reason = (
        f"closing cost {money(value.closing_cost_mid)} >= {STOP_LOSS_MULTIPLE} x entry credit "
        f"{money(spread.entry_credit)}: close at the natural debit {money(-price)}"
    )
    return exit_decision(position_id, spread, OrderPurpose.STOP_LOSS, price, reason, working)


def stop_loss_reprice_price(
    spread: PositionSpread, working_price: Decimal, natural: Decimal
) -> Decimal | None:
    """The new limit of a working stop at ``working_price`` given the current natural.

    None when the order already sits at the (capped, rounded) natural: re-placing at the
    same price would only churn orders.
    """
    price = stop_loss_price(spread, natural)
    return None if price == working_price else price


def reprice_stop_loss(
    position_id: UUID,
    spread: PositionSpread,
    value: SpreadValue,
    working: WorkingExit,
) -> ExitDecision | None:
    """The working stop re-priced to the new natural (every minute), or None if unchanged."""
    if working.purpose is not OrderPurpose.STOP_LOSS:
        raise ValueError(f"order {working.order_id} is a {working.purpose}, not a stop loss")
    price = stop_loss_reprice_price(spread, working.limit_price, value.closing_cost_natural)
    if price is None:
        return None
    reason = (
        f"stop loss re-priced to the natural closing debit {money(-price)} "
        f"(was {money(-working.limit_price)})"
    )
    return exit_decision(position_id, spread, OrderPurpose.STOP_LOSS, price, reason, working)


# --- 7-DTE time exit ---------------------------------------------------------------------


def daily_run_time(day: date) -> datetime | None:
    """The daily exit run of ``day`` (UTC): 15:45 New York, 12:45 on a half day; None when
    the market is closed all day.
    """
    if not is_session(day):
        return None
    at = HALF_DAY_RUN if is_half_day(day) else DAILY_RUN
    return datetime.combine(day, at, tzinfo=NEW_YORK).astimezone(UTC)


def latest_run_day(now: datetime) -> date | None:
    """The latest session day whose daily run time is at or before ``now``.

    At the run itself that is today; at start-up it names the run that should have
    happened last, whose DTE the ladder uses ("at start-up for anything already due").
    """
    now = require_aware(now)
    day = ny_date(now)
    for _ in range(_RUN_LOOKBACK_DAYS):
        at = daily_run_time(day)
        if at is not None and at <= now:
            return day
        day -= timedelta(days=1)
    return None


def next_run_after(now: datetime) -> datetime:
    """The first daily run strictly after ``now`` (for the shell's timer)."""
    now = require_aware(now)
    day = ny_date(now)
    while True:
        at = daily_run_time(day)
        if at is not None and at > now:
            return at
        day += timedelta(days=1)


def time_exit_ceiling(spread: PositionSpread, dte: int) -> Decimal:
    """The most the time exit pays to close ``spread`` (per share, a debit) at ``dte``.

    7 DTE: entry credit; 6: entry + 70 % of max loss; 5: + 80 %; 4: + 90 %; 3 or less:
    the full width. Never above the width. Raises ValueError above 7 DTE (not due).
    """
    if dte > TIME_EXIT_DTE:
        raise ValueError(f"no time exit at {dte} DTE (it starts at {TIME_EXIT_DTE})")
    share = TIME_EXIT_LADDER.get(dte)
    if share is None:
        return spread.width
    return _capped(spread.entry_credit + share * spread.max_loss, spread)


def _ceiling_reason(spread: PositionSpread, dte: int, price: Decimal) -> str:
    share = TIME_EXIT_LADDER.get(dte)
    if share is None:
        rule = f"full width {money(spread.width)}"
    elif share == 0:
        rule = f"entry credit {money(spread.entry_credit)}"
    else:
        rule = (
            f"entry credit {money(spread.entry_credit)} + {percent(share)} % of max loss "
            f"{money(spread.max_loss)}"
        )
    return f"{dte} DTE time exit: close at a debit of at most {money(-price)} ({rule})"


def plan_time_exit(
    position_id: UUID,
    spread: PositionSpread,
    dte: int,
    working: WorkingExit | None,
) -> ExitDecision | None:
    """The time exit of an open ``spread`` at ``dte`` (of the run day), or None.

    None above 7 DTE, while a stop loss or manual exit works, or when the working time
    exit already has today's price (a re-run of the day's decision changes nothing).
    """
    if dte > TIME_EXIT_DTE:
        return None
    if working is not None and working.purpose in (
        OrderPurpose.STOP_LOSS,
        OrderPurpose.MANUAL_EXIT,
    ):
        return None
    price = debit_limit(time_exit_ceiling(spread, dte))
    if (
        working is not None
        and working.purpose is OrderPurpose.TIME_EXIT
        and working.limit_price == price
    ):
        return None
    reason = _ceiling_reason(spread, dte, price)
    return exit_decision(position_id, spread, OrderPurpose.TIME_EXIT, price, reason, working)


def plan_time_exits(
    position_id: UUID,
    expiration: date,
    open_spreads: Sequence[PositionSpread],
    working: Mapping[SpreadKind, WorkingExit],
    now: datetime,
) -> tuple[ExitDecision, ...]:
    """The daily run for one position: a time exit per open spread that needs one.

    DTE counts from the latest run day at or before ``now`` (see `latest_run_day`), so
    the run at start-up prices what the missed run would have.
    """
    run_day = latest_run_day(now)
    if run_day is None:
        return ()
    dte = (expiration - run_day).days
    decisions = (
        plan_time_exit(position_id, spread, dte, working.get(spread.kind))
        for spread in open_spreads
    )
    return tuple(d for d in decisions if d is not None)


# --- closing fills -----------------------------------------------------------------------

#: How a filled exit closes its spread.
CLOSE_REASONS: Mapping[OrderPurpose, CloseReason] = {
    OrderPurpose.PROFIT_TARGET: CloseReason.PROFIT_TARGET,
    OrderPurpose.STOP_LOSS: CloseReason.STOP_LOSS,
    OrderPurpose.TIME_EXIT: CloseReason.TIME_EXIT,
    OrderPurpose.MANUAL_EXIT: CloseReason.MANUAL_EXIT,
}


@dataclass(frozen=True, slots=True)
class SpreadClose:
    """One ``SpreadClosed``, minus the envelope and ``position_id``."""

    spread_kind: SpreadKind
    reason: CloseReason
    closing_order_id: UUID
    exit_debit: Decimal
    """Short (bought back) fill - long (sold) fill, per share."""
    realized_pnl: Decimal
    """(Entry credit - exit debit) x 100 x quantity."""

    def event_fields(self) -> dict[str, Any]:
        """The payload of ``SpreadClosed`` (without ``position_id``)."""
        return {
            "spread_kind": self.spread_kind,
            "reason": self.reason,
            "closing_order_id": self.closing_order_id,
            "exit_debit": self.exit_debit,
            "realized_pnl": self.realized_pnl,
        }


def _average(fills: Sequence[LegFill], symbol: str, action: OrderAction, quantity: int) -> Decimal:
    mine = [f for f in fills if f.symbol == symbol]
    if any(f.action is not action for f in mine):
        raise InvalidFill(f"{symbol} was not filled as {action}")
    filled = sum(f.quantity for f in mine)
    if filled != quantity:
        raise InvalidFill(f"{symbol}: {filled} of {quantity} contracts filled")
    return sum((f.fill_price * f.quantity for f in mine), Decimal(0)) / filled


def close_by_fill(
    spread: PositionSpread,
    purpose: OrderPurpose,
    order_id: UUID,
    fills: Sequence[LegFill],
) -> SpreadClose:
    """The spread closed by its completely filled exit ``order_id``; raises `InvalidFill`.

    Exit debit = short leg's average fill - long leg's average fill (per share); realised
    P&L = (entry credit - exit debit) x 100 x quantity. The other spreads stay open.
    """
    reason = CLOSE_REASONS.get(purpose)
    if reason is None:
        raise InvalidFill(f"an {purpose} order closes no spread")
    short = _average(fills, spread.short_symbol, OrderAction.BUY_TO_CLOSE, spread.quantity)
    long = _average(fills, spread.long_symbol, OrderAction.SELL_TO_CLOSE, spread.quantity)
    debit = short - long
    return SpreadClose(
        spread_kind=spread.kind,
        reason=reason,
        closing_order_id=order_id,
        exit_debit=debit,
        realized_pnl=realized_pnl(spread.entry_credit, debit, spread.quantity),
    )


def position_realized_pnl(closed: Sequence[Decimal]) -> Decimal:
    """``PositionClosed.realized_pnl``: the sum of the spreads' realised P&L."""
    return sum(closed, Decimal(0))
