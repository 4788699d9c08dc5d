"""Staleness of watched symbols, wired to the bus: MarketDataStale and MarketDataRecovered.

The FRESH/STALE decision itself is the core's (`core.staleness`); this part feeds it the
quote arrivals and the scheduler's checks (business time, with the New York session's
open while the market is open), publishes the transitions, and keeps the stale-symbols
gauge. A stale reason names the stream's state, so whoever reads the event learns
whether the socket is down or just one symbol went quiet.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from prometheus_client import Gauge

from libs.contracts.market import MarketDataRecovered, MarketDataStale
from libs.runtime import market_hours
from libs.runtime.envelopes import Envelopes
from libs.runtime.log import get_logger
from services.market_data import SERVICE
from services.market_data.broker_link import BrokerLink
from services.market_data.core.staleness import StalenessMonitor
from services.market_data.publishing import Publisher


class Staleness:
    """Which watched symbols are stale, and the events when that changes."""

    def __init__(
        self,
        stale_after_s: int,
        broker: BrokerLink,
        publisher: Publisher,
        gauge: Gauge,
        envelope: Envelopes,
    ) -> None:
        self._stale_after_s = stale_after_s
        self._envelope = envelope
        self._monitor = StalenessMonitor(timedelta(seconds=stale_after_s))
        self._broker = broker
        self._publisher = publisher
        self._gauge = gauge
        self._log = get_logger(SERVICE)

    def watch(self, symbol: str, now: datetime) -> None:
        """Start judging ``symbol`` from ``now`` (no-op when already watched)."""
        self._monitor.watch(symbol, now)

    def unwatch(self, symbol: str) -> None:
        """Stop judging ``symbol`` (its lease ended)."""
        self._monitor.unwatch(symbol)

    def is_stale(self, symbol: str) -> bool:
        """Whether ``symbol`` is stale now."""
        return self._monitor.is_stale(symbol)

    def stale_since(self, symbol: str) -> datetime | None:
        """When ``symbol`` went stale, or None."""
        return self._monitor.stale_since(symbol)

    def stale_symbols(self) -> list[str]:
        """Every stale symbol, sorted."""
        return self._monitor.stale_symbols()

    def quote(self, symbol: str, now: datetime) -> None:
        """Record a quote of ``symbol``; MarketDataRecovered when it was stale."""
        recovered = self._monitor.quote(symbol, now)
        if recovered is not None:
            self._publisher.emit(
                MarketDataRecovered(
                    **self._envelope(None, occurred_at=now),
                    symbol=symbol,
                    stale_since=recovered.stale_since,
                )
            )
            self._log.info("quotes recovered", symbol=symbol, stale_since=recovered.stale_since)

    def check(self, now: datetime, today_if_open: date | None) -> None:
        """MarketDataStale for each symbol that went stale by ``now``.

        ``today_if_open`` is the New York date while the market is open, else None:
        outside the session quotes legitimately stop, so nothing goes stale.
        """
        session_open = None
        if today_if_open is not None:
            bounds = market_hours.session_bounds(today_if_open)
            session_open = bounds[0] if bounds is not None else None
        went = self._monitor.check(now, session_open)
        if went:
            stream_state = self._broker.describe_stream()
            for w in went:
                last = "never" if w.last_quote_at is None else w.last_quote_at.isoformat()
                reason = (
                    f"no quote for {int(w.age.total_seconds())} s (last {last}); {stream_state}"
                )
                self._publisher.emit(
                    MarketDataStale(
                        **self._envelope(None, occurred_at=now),
                        symbol=w.symbol,
                        last_quote_at=w.last_quote_at,
                        max_age_seconds=self._stale_after_s,
                        reason=reason,
                    )
                )
                self._log.warning("quotes stale", symbol=w.symbol, reason=reason)
        self._gauge.set(len(self._monitor.stale_symbols()))
