"""Releases: ``RiskReleased`` when an event ends a pending reservation.

An opening order's end, ``PositionOpened``, or the suggestion rejected or expired
before any order: which reservation is due and why is the pure
`services.risk.accounts.release_due`, judged on the state after the event was folded;
a reservation no longer pending releases nothing, so a redelivery does nothing.
"""

from __future__ import annotations

from libs.contracts.envelope import Event
from libs.contracts.execution import OrderCancelled, OrderExpired, OrderRejected
from libs.contracts.positions import PositionOpened
from libs.contracts.risk import RiskReleased
from libs.contracts.strategy import SuggestionExpired, SuggestionRejected
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from services.risk.accounts import release_due
from services.risk.state import SERVICE, RiskState

#: The events that may end a pending reservation (see `release_due`).
RELEASING: tuple[type[Event], ...] = (
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PositionOpened,
    SuggestionRejected,
    SuggestionExpired,
)


class Releases:
    """Reacts to the `RELEASING` events with the reservation's release, if one is due."""

    def __init__(self, shell: ServiceShell, state: RiskState) -> None:
        self._shell = shell
        self._state = state
        self._log = get_logger(SERVICE)

    async def release_if_due(self, event: Event) -> None:
        """RiskReleased when ``event`` ends a pending reservation (see `release_due`)."""
        assert event.account_id is not None
        async with self._state.lock(event.account_id):
            due = release_due(self._state.account(event.account_id), event)
            if due is None:
                return
            released = RiskReleased(
                **self._shell.envelope(event.account_id, event.causation()),
                reservation_id=due.reservation.reservation_id,
                suggestion_id=due.reservation.suggestion_id,
                amount=due.reservation.amount,
                reason=due.reason,
                order_id=due.order_id,
            )
            await self._shell.publish(released)
        self._log.info(
            "risk released",
            account_id=event.account_id,
            reservation_id=str(released.reservation_id),
            reason=released.reason.value,
            amount=str(released.amount),
        )
