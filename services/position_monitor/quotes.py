"""The quotes the monitor values with: leased from market data, polled, kept (latest wins).

The monitor leases its options from market data (``WatchSymbols``, renewed at
half-life) and polls ``GetQuotes`` every ``quote_poll_s`` real seconds rather than
consuming ``QuoteReceived``: one request per poll for all positions, no subscription to
the market stream to keep alive, and the latest quote is all a valuation needs (market
data publishes at most 1/s per symbol anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from structlog.stdlib import BoundLogger

from libs.contracts.commands import GetQuotes, QuotesReply, WatchReply, WatchSymbols
from libs.contracts.errors import SenexError
from libs.contracts.market import Quote
from libs.runtime.following import ServiceShell
from services.position_monitor.managed import managed_positions, option_symbols
from services.position_monitor.settings import MonitorSettings
from services.position_monitor.state import MonitorState

#: GetQuotes takes at most this many symbols per request.
QUOTES_PER_REQUEST = 200
#: WatchSymbols takes at most this many symbols per request.
WATCH_PER_REQUEST = 500


def batches(symbols: Sequence[str], size: int) -> list[tuple[str, ...]]:
    """``symbols`` in order, in requests of at most ``size``."""
    return [tuple(symbols[start : start + size]) for start in range(0, len(symbols), size)]


def leases_due(
    symbols: Iterable[str], leases: Mapping[str, datetime], now: datetime, lease_seconds: int
) -> list[str]:
    """The symbols (sorted) whose lease ends within half a lease from ``now``, or that
    were never leased."""
    half = timedelta(seconds=lease_seconds / 2)
    return sorted(s for s in symbols if leases.get(s, now) - now < half)


class Quotes:
    """Leases and polls the managed positions' options; the latest quote of each."""

    def __init__(
        self,
        shell: ServiceShell,
        state: MonitorState,
        settings: MonitorSettings,
        log: BoundLogger,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``monotonic`` replaces the real-time clock of the poll cadence (tests)."""
        self._shell = shell
        self._state = state
        self._settings = settings
        self._log = log
        self._monotonic = monotonic
        self._latest: dict[str, Quote] = {}
        self._leases: dict[str, datetime] = {}
        self._next_poll = 0.0
        self._fresh = False

    @property
    def latest(self) -> Mapping[str, Quote]:
        """The latest quote of every symbol fetched so far."""
        return self._latest

    def take_fresh(self) -> bool:
        """Whether a poll succeeded since the last call (then the marks are due)."""
        fresh, self._fresh = self._fresh, False
        return fresh

    async def poll_if_due(self) -> None:
        """Every ``quote_poll_s`` real seconds: renew the leases due, fetch every quote."""
        if self._monotonic() < self._next_poll:
            return
        self._next_poll = self._monotonic() + self._settings.quote_poll_s
        wanted = option_symbols(managed_positions(self._state))
        if not wanted:
            return
        try:
            await self._renew_leases(wanted)
            for account, symbols in wanted.items():
                await self.fetch(account, sorted(symbols))
        except SenexError as exc:
            # Without quotes nothing is valued and no stop is decided; time exits and
            # fills go on. Logged each poll until market data answers again.
            self._log.warning("quotes unavailable", kind=exc.kind.value, error=exc.message)
            return
        self._fresh = True

    async def fetch(self, account: str, symbols: Sequence[str]) -> dict[str, Quote]:
        """Quotes of ``symbols`` now (kept as the latest too); missing ones left out."""
        found: dict[str, Quote] = {}
        for chunk in batches(symbols, QUOTES_PER_REQUEST):
            reply = await self._shell.bus.request(
                GetQuotes(account_id=account, symbols=chunk), QuotesReply
            )
            for quote in reply.quotes:
                found[quote.symbol] = quote
        self._latest.update(found)
        return found

    async def _renew_leases(self, wanted: Mapping[str, set[str]]) -> None:
        now = self._shell.clock.now()
        lease_seconds = self._settings.lease_seconds
        for account, symbols in wanted.items():
            due = leases_due(symbols, self._leases, now, lease_seconds)
            for chunk in batches(due, WATCH_PER_REQUEST):
                reply = await self._shell.bus.request(
                    WatchSymbols(account_id=account, symbols=chunk, lease_seconds=lease_seconds),
                    WatchReply,
                )
                for symbol in reply.symbols:
                    self._leases[symbol] = reply.watched_until
