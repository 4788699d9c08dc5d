"""Inputs and confirmation of the broker sync (pure); the diff itself is the core's.

A fill in flight makes the broker differ from the app for a moment (the broker already
holds fewer contracts, the ``SpreadClosed`` is not folded yet), so a finding is only
acted on when a second read, a few seconds later, finds exactly the same thing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from libs.broker.models import BrokerPosition
from libs.contracts.positions import PositionStatus
from services.position_monitor.core import AppPosition, SyncFinding
from services.position_monitor.projection import PositionBook


def broker_holdings(positions: Iterable[BrokerPosition]) -> dict[str, int]:
    """Options the broker holds: OCC symbol -> net signed quantity (shares ignored)."""
    held: dict[str, int] = defaultdict(int)
    for position in positions:
        if position.option_symbol is not None:
            held[position.symbol] += position.quantity
    return {symbol: quantity for symbol, quantity in held.items() if quantity != 0}


def app_positions(book: PositionBook) -> list[AppPosition]:
    """The account's active open positions as the app expects the broker to hold them.

    Opened positions by their open spreads; a flagged opening that never filled (not
    app-managed) by the legs it was last seen holding. Inactive ones (gone at the broker)
    are left out: they were reported already.
    """
    found: list[AppPosition] = []
    for record in sorted(book.positions.values(), key=lambda r: str(r.position_id)):
        if not record.active or record.status is not PositionStatus.OPEN:
            continue
        if record.opened_at is not None:
            spreads = [s.spread for s in record.spreads if s.open]
            if spreads:
                found.append(AppPosition.of_spreads(record.position_id, record.underlying, spreads))
        elif record.attention is not None and record.attention.held_legs:
            found.append(
                AppPosition.of_held_legs(
                    record.position_id, record.underlying, record.attention.held_legs
                )
            )
    return found


def _key(finding: SyncFinding) -> tuple[object, ...]:
    return (finding.position_id, finding.reason, tuple(finding.held_legs))


def confirmed(first: Sequence[SyncFinding], second: Sequence[SyncFinding]) -> list[SyncFinding]:
    """The findings of ``second`` that ``first`` found identically (same position, reason
    and broker holdings)."""
    seen = {_key(f) for f in first}
    return [f for f in second if _key(f) in seen]
