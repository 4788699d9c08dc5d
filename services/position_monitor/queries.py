"""The monitor's queries: ``GetPosition`` and ``GetPositions``, answered from its state."""

from __future__ import annotations

from uuid import UUID

from libs.contracts.commands import GetPosition, GetPositions, PositionListReply, PositionReply
from libs.contracts.errors import NotFound
from libs.contracts.positions import PositionStatus, PositionView
from services.position_monitor.projection import PositionBook, PositionRecord
from services.position_monitor.state import MonitorState
from services.position_monitor.views import position_view


def record_of(state: MonitorState, account: str, position_id: UUID) -> PositionRecord:
    """One position of the account; `NotFound` when the account has no such position."""
    record = state.position(account, position_id)
    if record is None:
        raise NotFound(
            f"position {position_id} not found for account {account}",
            details={"position_id": str(position_id)},
        )
    return record


def listed(book: PositionBook, include_closed: bool) -> list[PositionRecord]:
    """The positions a list shows: opened or flagged ones, open ones unless
    ``include_closed`` (a reservation that never reached the broker is not a position)."""
    return [
        r
        for r in book.positions.values()
        if (r.opened_at is not None or r.attention is not None)
        and (include_closed or r.status is PositionStatus.OPEN)
    ]


def position_views(
    state: MonitorState, account: str, include_closed: bool
) -> tuple[PositionView, ...]:
    """The account's listed positions as views, newest first."""
    views = [position_view(state, r) for r in listed(state.book(account), include_closed)]
    views.sort(key=lambda v: v.opened_at, reverse=True)
    return tuple(views)


class Queries:
    """Answers the position queries."""

    def __init__(self, state: MonitorState) -> None:
        self._state = state

    async def get_position(self, command: GetPosition) -> PositionReply:
        """One position of the account."""
        record = record_of(self._state, command.account_id, command.position_id)
        return PositionReply(position=position_view(self._state, record))

    async def get_positions(self, command: GetPositions) -> PositionListReply:
        """The account's positions (open ones unless ``include_closed``), newest first."""
        return PositionListReply(
            positions=position_views(self._state, command.account_id, command.include_closed)
        )
