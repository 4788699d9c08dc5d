"""Option chains: the structure cache, the warm default window, and snapshot answers.

A chain's structure (expirations, strikes, symbols) changes at most daily, so it is
fetched every ``chain_refresh_s`` and at each new New York date, and a snapshot never
waits on the broker for it once cached. The strategy's default window (its DTE range and
strike range plus a margin) stays subscribed so its snapshots are answered from the
quote cache at once; a snapshot asking outside that window subscribes the missing
strikes for a while (demand) and waits up to ``wait_seconds`` for their first quotes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from libs.broker.models import OptionChain
from libs.contracts.commands import (
    ChainSnapshotExpiration,
    ChainSnapshotReply,
    ChainStrikeQuotes,
    GetChainSnapshot,
)
from libs.contracts.errors import BrokerUnavailable, SenexError
from libs.runtime import market_hours
from libs.runtime.clock import Clock
from libs.runtime.log import get_logger
from services.market_data import SERVICE
from services.market_data.broker_link import BrokerLink
from services.market_data.core.cadence import Cadence
from services.market_data.core.chain import select_window, window_symbols
from services.market_data.quotes import Quotes
from services.market_data.settings import MarketDataSettings

#: Business seconds before a failed chain fetch is tried again.
CHAIN_RETRY = timedelta(seconds=30)
#: The chain line of /health before the first fetch.
NOT_LOADED = "not loaded yet"


class Chains:
    """Each underlying's chain, the default window kept warm, and snapshot answers."""

    def __init__(
        self, settings: MarketDataSettings, *, clock: Clock, broker: BrokerLink, quotes: Quotes
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._broker = broker
        self._quotes = quotes
        self._subscriptions = quotes.subscriptions
        self._underlyings = tuple(settings.underlyings)
        self._log = get_logger(SERVICE)
        self._chains: dict[str, OptionChain] = {}
        #: The chain line of /health: ok, or the last fetch's error.
        self.status = NOT_LOADED
        self._refresh_cadence = Cadence(timedelta(seconds=settings.chain_refresh_s))
        # The window follows the mid, so it is re-centred as often as the bands move.
        self._window_cadence = Cadence(timedelta(seconds=settings.bands_interval_s))
        self._day: date | None = None

    # --- the schedule -----------------------------------------------------------------

    def refresh_due(self, now: datetime, today: date) -> bool:
        """Whether the chains are due a refresh: their cadence, or a new New York date."""
        if self._refresh_cadence.due(now) or today != self._day:
            self._day = today
            return True
        return False

    def window_due(self, now: datetime) -> bool:
        """Whether the default window is due to be re-centred on the mid."""
        return self._window_cadence.due(now)

    # --- the broker -------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetch every underlying's chain, then re-centre the window on it."""
        adapter, account = self._broker.session()
        try:
            for underlying in self._underlyings:
                self._chains[underlying] = await adapter.get_option_chain(account, underlying)
        except SenexError as exc:
            self.status = f"error: {exc.kind.value}: {exc.message}"
            self._refresh_cadence.retry_at(self._clock.now() + CHAIN_RETRY)
            raise
        self.status = "ok"
        await self.update_window(market_hours.ny_date(self._clock.now()))

    async def _chain(self, underlying: str) -> OptionChain:
        chain = self._chains.get(underlying)
        if chain is not None:
            return chain
        adapter, account = self._broker.session()
        chain = await adapter.get_option_chain(account, underlying)
        self._chains[underlying] = chain
        return chain

    # --- the warm window --------------------------------------------------------------

    async def update_window(self, today: date) -> None:
        """Keep the strategy's default window (plus a margin) subscribed."""
        s = self._settings
        current = self._subscriptions.window
        symbols: set[str] = set()
        for underlying in self._underlyings:
            chain = self._chains.get(underlying)
            mid_quote = self._quotes.latest(underlying)
            if chain is None or mid_quote is None:
                # Retry on the next pass rather than in 30 s: the first quote is near.
                self._window_cadence.reset()
                if current:
                    symbols |= {w for w in current if w.startswith(underlying)}
                continue
            window = select_window(
                chain,
                today=today,
                mid=mid_quote.mid,
                min_dte=s.default_min_dte,
                max_dte=s.default_max_dte,
                strike_range=s.default_strike_range + s.window_margin,
            )
            symbols.update(window_symbols(window))
        if frozenset(symbols) != self._subscriptions.window:
            self._log.info("default window subscribed", symbols=len(symbols))
            await self._subscriptions.set_window(frozenset(symbols))

    # --- the query --------------------------------------------------------------------

    async def get_chain_snapshot(self, command: GetChainSnapshot) -> ChainSnapshotReply:
        """The chain near the money from the cache; new strikes are subscribed and awaited."""
        now = self._clock.now()
        underlying = str(command.underlying)
        quote = self._quotes.fresh_underlying(underlying)
        chain = await self._chain(underlying)
        window = select_window(
            chain,
            today=market_hours.ny_date(now),
            mid=quote.mid,
            min_dte=command.min_dte,
            max_dte=command.max_dte,
            strike_range=command.strike_range,
        )
        symbols = window_symbols(window)
        outside = [s for s in symbols if s not in self._subscriptions.window]
        if outside:
            self._subscriptions.demand.extend(
                outside, now + timedelta(seconds=self._settings.snapshot_lease_s)
            )
        subscribed = self._subscriptions.subscribed()
        new = [s for s in symbols if s not in subscribed]
        if new:
            if self._broker.stream is None:
                raise BrokerUnavailable(
                    f"no market-data stream to subscribe new strikes: {self._broker.status}"
                )
            await self._subscriptions.resync()
            await self._quotes.await_quotes(new, command.wait_seconds)

        latest = self._quotes.latest
        expirations = tuple(
            ChainSnapshotExpiration(
                expiration=e.expiration,
                dte=e.dte,
                strikes=tuple(
                    ChainStrikeQuotes(strike=k.strike, put=latest(k.put), call=latest(k.call))
                    for k in e.strikes
                ),
            )
            for e in window
        )
        return ChainSnapshotReply(
            underlying=command.underlying,
            as_of=now,
            underlying_quote=quote,
            expirations=expirations,
            missing=tuple(s for s in symbols if s not in self._quotes),
        )
