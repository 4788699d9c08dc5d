"""Query answers from the monitor's state (pure): `PositionView` of a `PositionRecord`."""

from __future__ import annotations

from libs.contracts.positions import PositionView, SpreadView
from services.position_monitor.projection import PositionRecord
from services.position_monitor.state import MonitorState


class UnviewablePosition(ValueError):
    """A record with neither an opening nor a flag (cannot happen through the fold)."""


def position_view(state: MonitorState, record: PositionRecord) -> PositionView:
    """The position as the monitor sees it now: spreads with their working exit and the
    latest marks; a flagged opening that never filled shows what the broker holds.
    """
    marks = {mark.kind: mark for mark in record.spread_marks}
    spreads = []
    for spread in record.spreads:
        working = state.working_exit(spread) if spread.open else None
        mark = marks.get(spread.spread.kind) if spread.open else None
        spreads.append(
            SpreadView(
                spread=spread.spread,
                open=spread.open,
                exit_order_id=working.order_id if working is not None else None,
                exit_purpose=working.purpose if working is not None else None,
                close_reason=spread.close_reason,
                realized_pnl=spread.realized_pnl,
                closing_cost_mid=mark.closing_cost_mid if mark is not None else None,
                unrealized_pnl=mark.unrealized_pnl if mark is not None else None,
            )
        )
    attention = record.attention
    opened_at = record.opened_at or (attention.flagged_at if attention is not None else None)
    if opened_at is None:
        raise UnviewablePosition(f"position {record.position_id} was never opened nor flagged")
    return PositionView(
        position_id=record.position_id,
        underlying=record.underlying,
        expiration=record.expiration,
        width=record.width,
        status=record.status,
        app_managed=record.app_managed,
        active=record.active,
        needs_attention=record.needs_attention,
        attention_reason=attention.reason if attention is not None else None,
        spreads=tuple(spreads),
        held_legs=attention.held_legs if attention is not None else (),
        opened_at=opened_at,
        closed_at=record.closed_at,
        max_risk=record.max_risk,
        realized_pnl=record.realized_pnl,
        unrealized_pnl=record.unrealized_pnl,
        dte=record.dte,
    )
