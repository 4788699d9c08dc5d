"""The envelope of a service's events: who produced them, when, and what caused them.

Every event a service publishes carries its name as ``producer``, the business clock's
``occurred_at`` and either its cause's correlation and causation ids or, for an event
that starts a new chain (a timer's decision, a suspension), a fresh correlation id.
One builder, so no service spells the envelope out by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from libs.contracts.envelope import Causation, new_event_id
from libs.runtime.clock import Clock


class Envelopes:
    """Builds the envelope fields of one service's events: ``Event(**envelope(...), ...)``."""

    def __init__(self, producer: str, clock: Callable[[], Clock]) -> None:
        """``clock`` gives the business clock when an event is built (set at start)."""
        self._producer = producer
        self._clock = clock

    def __call__(
        self,
        account_id: str | None,
        cause: Causation | None = None,
        *,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Envelope of an event of ``account_id`` caused by ``cause`` (None: a new chain).

        ``occurred_at``: when the fact happened, if the caller already knows and it is
        not the clock's now (a quote held back by a throttle, a tick's instant).
        """
        links: dict[str, Any] = (
            dict(cause) if cause is not None else {"correlation_id": new_event_id()}
        )
        return {
            "occurred_at": occurred_at if occurred_at is not None else self._clock().now(),
            "producer": self._producer,
            "account_id": account_id,
            **links,
        }
