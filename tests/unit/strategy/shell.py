"""A service shell without NATS, for the collaborators' unit tests (strategy and risk).

``publish`` records each event and folds it into the state at once, in order: what the
real shell's ``publish`` guarantees when it returns (the fold has passed the events).
"""

from __future__ import annotations

from collections.abc import Callable

from libs.contracts.envelope import Event
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock, ManualClock
from libs.runtime.envelopes import Envelopes


class FakeShell:
    """Publishes into ``apply``; owns every account unless ``owned`` says otherwise."""

    def __init__(
        self,
        apply: Callable[[Event], None],
        clock: ManualClock,
        *,
        producer: str = "test-service",
        owned: set[str] | None = None,
    ) -> None:
        self.name = producer
        self._apply = apply
        self._clock = clock
        self.owned = owned
        self.published: list[Event] = []
        self.envelope = Envelopes(producer, lambda: self._clock)

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def bus(self) -> Bus:
        raise AssertionError("a unit test has no bus")

    async def publish(self, *events: Event) -> None:
        for event in events:
            self.published.append(event)
            self._apply(event)

    def owns(self, account_id: str) -> bool:
        return self.owned is None or account_id in self.owned
