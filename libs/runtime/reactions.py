"""A service's reactions to live events, as a table by exact event class.

The projections fold through `libs.projections.Handlers`; reactions use the same shape:
``Reactions({RiskReserved: opener.on_reserved, ExitOrderPlaced: exits.on_decided})``.
Contract events are leaf classes, so one dict lookup finds the handler, and an event no
one reacts to is passed over. Several handlers of one class run in the order given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from libs.contracts.envelope import Event

#: One reaction to one event class (it gets the event as that class).
Reaction = Callable[[Any], Awaitable[None]]


class Reactions:
    """Dispatches a live event to the reactions registered for its exact class."""

    def __init__(self, table: Mapping[type[Event], Reaction | Iterable[Reaction]]) -> None:
        """``table``: per event class, one reaction or several run in order."""
        self._by_type: dict[type[Event], tuple[Reaction, ...]] = {
            event_type: (handlers,) if callable(handlers) else tuple(handlers)
            for event_type, handlers in table.items()
        }

    @property
    def event_types(self) -> frozenset[type[Event]]:
        """The classes reacted to."""
        return frozenset(self._by_type)

    async def __call__(self, event: Event) -> None:
        """Run the reactions of ``event``'s class (none: nothing happens)."""
        for reaction in self._by_type.get(type(event), ()):
            await reaction(event)
