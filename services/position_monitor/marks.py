"""Marks: each managed position valued from the latest quotes, and its stops decided.

``PositionUpdated`` at most every 10 s of business time while a figure changes (the
core's `valuation_due` against what the book folded last); after each valuation the
stop losses (`exits.stop_loss_decisions`). A position whose legs are not all quoted
yet is neither valued nor decided.
"""

from __future__ import annotations

from datetime import datetime

from libs.contracts.envelope import Event
from libs.contracts.positions import PositionUpdated
from libs.runtime.following import ServiceShell
from services.position_monitor.core import (
    MissingQuote,
    Published,
    ValuationFigures,
    valuation_due,
    value_position,
)
from services.position_monitor.exits import Exits, stop_loss_decisions
from services.position_monitor.managed import managed_positions
from services.position_monitor.projection import PositionRecord
from services.position_monitor.quotes import Quotes
from services.position_monitor.state import MonitorState


def published(record: PositionRecord) -> Published | None:
    """The position's last published valuation, as the book folded it."""
    if record.valued_at is None or record.unrealized_pnl is None or record.dte is None:
        return None
    return Published(
        at=record.valued_at,
        figures=ValuationFigures(
            spreads=record.spread_marks, unrealized_pnl=record.unrealized_pnl, dte=record.dte
        ),
    )


class Marks:
    """Values the managed positions and decides their stops."""

    def __init__(
        self, shell: ServiceShell, state: MonitorState, quotes: Quotes, exits: Exits
    ) -> None:
        self._shell = shell
        self._state = state
        self._quotes = quotes
        self._exits = exits

    async def mark_to_market(self, now: datetime) -> None:
        """Value every managed position at ``now``; publish what is due, then its stops."""
        for account, record in managed_positions(self._state):
            if record.expiration is None:
                continue
            open_spreads = [s.spread for s in record.spreads if s.open]
            try:
                valuation = value_position(
                    open_spreads, record.expiration, self._quotes.latest, now
                )
            except MissingQuote:
                continue  # not every leg quoted yet: nothing valued, nothing decided
            events: list[Event] = []
            if valuation_due(published(record), valuation.figures, now):
                events.append(
                    PositionUpdated(
                        **self._shell.envelope(account),
                        position_id=record.position_id,
                        **valuation.event_fields(),
                    )
                )
            decisions = stop_loss_decisions(self._state, record, valuation, now)
            await self._shell.publish(*events)
            await self._exits.place(account, decisions)
