"""From a filled opening to its position and profit targets; flags when it goes wrong.

A full fill of an opening publishes ``PositionOpened`` (its entry credits from the fill
prices), then a profit target per spread (``ExitOrderPlaced``) and places each. Its
first partial fill flags the position instead (``PositionNeedsAttention``, not app
managed, no automatic leg-in); fills that make no Trident flag it as a broker mismatch.
Every step checks what the state already holds, so a poll that finds the same fills
again (or a restart that cut the chain short) adds only what is missing.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import ValidationError
from structlog.stdlib import BoundLogger

from libs.contracts.errors import ErrorKind
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    HeldLeg,
    PositionAttentionCleared,
    PositionNeedsAttention,
    PositionOpened,
)
from services.execution.core import (
    InvalidOrder,
    PositionPlan,
    plan_position,
    position_id_for,
    profit_targets,
)
from services.execution.exits import Exits
from services.execution.metrics import ExecutionMetrics
from services.execution.projection import OrderRecord
from services.execution.recording import Recorder
from services.execution.state import ExecutionState


def held_legs(record: OrderRecord) -> tuple[HeldLeg, ...]:
    """The contracts a partly filled opening holds now, signed (+ long, - short)."""
    held: dict[str, int] = {}
    for fill in record.fills.values():
        sign = 1 if fill.action.is_buy else -1
        held[fill.symbol] = held.get(fill.symbol, 0) + sign * fill.quantity
    return tuple(
        HeldLeg(symbol=symbol, quantity=quantity) for symbol, quantity in held.items() if quantity
    )


def partial_fill_message(record: OrderRecord) -> str:
    """Why a partly filled opening is flagged, with what filled of each leg."""
    filled = ", ".join(
        f"{record.filled_quantity(leg.symbol)}/{leg.quantity} {leg.symbol}" for leg in record.legs
    )
    return f"the opening order filled partly ({filled}); not app managed, no automatic leg-in"


def plan_of(opened: PositionOpened) -> PositionPlan:
    """The plan a recorded position was opened with (its profit targets derive from it)."""
    return PositionPlan(
        underlying=opened.underlying,
        expiration=opened.expiration,
        width=opened.width,
        spreads=opened.spreads,
        total_entry_credit=opened.total_entry_credit,
        max_risk=opened.max_risk,
    )


class Positions:
    """Opens the position of a filled opening and decides its profit targets."""

    def __init__(
        self,
        state: ExecutionState,
        recorder: Recorder,
        exits: Exits,
        metrics: ExecutionMetrics,
        log: BoundLogger,
    ) -> None:
        self._state = state
        self._recorder = recorder
        self._exits = exits
        self._metrics = metrics
        self._log = log

    async def flag_partial(self, account: str, record: OrderRecord) -> None:
        """At the first partial fill of an opening: flag the position, not app managed."""
        position_id = position_id_for(record.order_id)
        if position_id in self._state.partial_flags:
            return
        await self._recorder.publish(
            PositionNeedsAttention(
                **self._recorder.order_envelope(account, record.order_id),
                position_id=position_id,
                underlying=record.underlying,
                reason=AttentionReason.PARTIAL_FILL,
                message=partial_fill_message(record),
                order_id=record.order_id,
                app_managed=False,
                held_legs=held_legs(record),
            )
        )

    async def ensure_position(self, account: str, record: OrderRecord) -> None:
        """PositionOpened for a filled opening, then its profit targets (idempotent).

        The caller holds the opening order's report lock.
        """
        position_id = position_id_for(record.order_id)
        opened = self._state.positions.get(position_id)
        announce = opened is None
        if opened is None:
            if record.suggestion_id is None:
                self._log.error(
                    "a filled opening without a suggestion", order_id=str(record.order_id)
                )
                return
            try:
                plan = plan_position(record.legs, tuple(record.fills.values()))
            except (InvalidOrder, ValidationError) as exc:
                await self._unreadable_fill(account, record, position_id, str(exc))
                return
            opened = PositionOpened(
                **self._recorder.order_envelope(account, record.order_id),
                position_id=position_id,
                suggestion_id=record.suggestion_id,
                opening_order_id=record.order_id,
                underlying=plan.underlying,
                expiration=plan.expiration,
                width=plan.width,
                spreads=plan.spreads,
                total_entry_credit=plan.total_entry_credit,
                max_risk=plan.max_risk,
            )
            await self._recorder.publish(opened)
            self._log.info(
                "position opened",
                position_id=str(position_id),
                total_entry_credit=str(plan.total_entry_credit),
            )
        if position_id in self._state.partial_flags and position_id not in self._state.cleared:
            await self._recorder.publish(
                PositionAttentionCleared(
                    **self._recorder.envelope(account, opened.causation()),
                    position_id=position_id,
                    message="the opening order filled completely; the position is app managed",
                )
            )
        await self._profit_targets(account, opened, announce=announce)

    async def _unreadable_fill(
        self, account: str, record: OrderRecord, position_id: UUID, error: str
    ) -> None:
        """A filled opening whose fills make no Trident: a human looks (flagged once)."""
        if position_id in self._state.mismatches:
            return  # flagged already (a poll finds the same fills again)
        self._log.error(
            "cannot derive the position from the fills", order_id=str(record.order_id), error=error
        )
        self._metrics.error(ErrorKind.INTERNAL_ERROR)
        await self._recorder.publish(
            PositionNeedsAttention(
                **self._recorder.order_envelope(account, record.order_id),
                position_id=position_id,
                underlying=record.underlying,
                reason=AttentionReason.BROKER_MISMATCH,
                message=f"the opening order filled but its fills make no Trident: {error}",
                order_id=record.order_id,
                app_managed=False,
            )
        )

    async def _profit_targets(
        self, account: str, opened: PositionOpened, *, announce: bool
    ) -> None:
        """Decide (ExitOrderPlaced, once each) and place the position's profit targets;
        ``announce``: log the spreads left without one (first time only)."""
        exits, skipped = profit_targets(plan_of(opened), opened.position_id)
        for kind, why in skipped if announce else ():
            self._log.warning(
                "no profit target", position_id=str(opened.position_id), kind=kind, why=why
            )
        for planned in exits:
            order = planned.order
            decided = self._state.exits.get(order.order_id)
            if decided is None:
                decided = ExitOrderPlaced(
                    **self._recorder.envelope(account, opened.causation()),
                    position_id=opened.position_id,
                    spread_kind=planned.spread_kind,
                    order_id=order.order_id,
                    purpose=order.purpose,
                    legs=order.legs,
                    limit_price=order.limit_price,
                    time_in_force=order.time_in_force,
                    reason=planned.reason,
                )
                await self._recorder.publish(decided)
            await self._exits.place(account, decided)
