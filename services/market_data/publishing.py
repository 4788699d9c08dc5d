"""What the market-data service publishes on the bus, and when: one loop, in real time.

Quote handling runs inside the stream's callbacks and must not wait on NATS, so events
are queued here and a single publisher loop sends them in batches. QuoteReceived goes
through a per-symbol throttle (latest wins, trailing edge; DOMAIN.md 8: push throttles
use real time, so the monotonic clock, not the business one); stale/recovered and
condition events are queued as they are. A failed batch is dropped and logged: quotes are
replaced by the next one within a second, and transitions are visible to operators in
the log and the PUBLISH_FAILED error metric.

`BalanceUpdated` does not come through here (see `balances`): it is published directly
so that a failed publish is retried at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter

from libs.broker.models import StreamQuote
from libs.contracts.envelope import Event
from libs.contracts.market import QuoteReceived
from libs.runtime.bus import Bus
from libs.runtime.envelopes import Envelopes
from libs.runtime.log import get_logger
from libs.runtime.metrics import ServiceMetrics
from services.market_data import SERVICE
from services.market_data.core.throttle import Throttle


@dataclass(frozen=True, slots=True)
class _Tick:
    """A quote held by the publication throttle."""

    quote: StreamQuote
    received_at: datetime


class Publisher:
    """The outbox of events and the QuoteReceived throttle, drained by `run`."""

    def __init__(
        self,
        bus: Bus,
        quote_interval_s: float,
        *,
        envelope: Envelopes,
        service_metrics: ServiceMetrics,
        published: Counter,
    ) -> None:
        self._bus = bus
        self._envelope = envelope
        self._throttle: Throttle[_Tick] = Throttle(quote_interval_s)
        self._outbox: list[Event] = []
        self._wake = asyncio.Event()
        self._service_metrics = service_metrics
        self._published = published
        self._log = get_logger(SERVICE)

    def emit(self, event: Event) -> None:
        """Queue ``event`` for the next batch."""
        self._outbox.append(event)
        self._wake.set()

    def offer_quote(self, quote: StreamQuote, received_at: datetime) -> None:
        """Publish ``quote`` as QuoteReceived now, or hold it until its symbol's interval ends."""
        tick = self._throttle.offer(quote.symbol, _Tick(quote, received_at), time.monotonic())
        if tick is not None:
            self._outbox.append(self._quote_event(tick))
        self._wake.set()

    def forget(self, symbol: str) -> None:
        """Stop publishing ``symbol``: drop its throttle state and any held quote."""
        self._throttle.forget(symbol)

    def _quote_event(self, tick: _Tick) -> QuoteReceived:
        q = tick.quote
        return QuoteReceived(
            # When the quote arrived, even if the throttle held it back since.
            **self._envelope(None, occurred_at=tick.received_at),
            symbol=q.symbol,
            bid=q.bid,
            ask=q.ask,
            bid_size=q.bid_size,
            ask_size=q.ask_size,
            quoted_at=q.quoted_at,
        )

    async def run(self) -> None:
        """Publish queued events and throttled quotes as they fall due (real time)."""
        while True:
            due = self._throttle.next_due()
            timeout = None if due is None else max(0.0, due - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Publish everything queued and every held quote now due, in one batch."""
        released = self._throttle.due(time.monotonic())
        events, self._outbox = self._outbox, []
        events.extend(self._quote_event(t) for t in released)
        if not events:
            return
        try:
            await self._bus.publish_many(events, timeout=10.0)
        except Exception as exc:  # quotes are replaceable; transitions are logged for ops
            self._service_metrics.error("PUBLISH_FAILED")
            lost = sorted({e.type for e in events})
            self._log.error(
                "publish failed; events dropped", count=len(events), types=lost, error=repr(exc)
            )
            return
        self._published.inc(sum(1 for e in events if isinstance(e, QuoteReceived)))
