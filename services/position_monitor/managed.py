"""Which positions the monitor decides for, and the options it needs quotes of (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from services.position_monitor.projection import PositionRecord
from services.position_monitor.state import MonitorState

#: An open position with its account.
Managed = tuple[str, PositionRecord]


def is_managed(record: PositionRecord) -> bool:
    """Whether the monitor decides the exits of an open position: app-managed, active
    (still held at the broker) and with a spread still open."""
    return record.app_managed and record.active and any(s.open for s in record.spreads)


def managed_positions(state: MonitorState) -> list[Managed]:
    """Open positions whose exits the monitor decides (by account, sorted)."""
    return [(account, record) for account, record in state.open_positions() if is_managed(record)]


def option_symbols(managed: Iterable[Managed]) -> dict[str, set[str]]:
    """The open spreads' option symbols, per account (accounts without any left out)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for account, record in managed:
        for spread in record.spreads:
            if spread.open:
                wanted[account].update((spread.spread.short_symbol, spread.spread.long_symbol))
    return dict(wanted)
