"""The gateway's NATS subscriptions for WebSocket clients, shared and reference-counted.

Account events: one core-NATS subscription per account with at least one connected
client, on ``senex.evt.<partition>.<account>.*.*``. The server routes by subject, so the gateway
receives only the events of accounts someone is watching, and a connection is handed
only the events of the accounts it registered for (its user's). Each event is parsed
and turned into its message once, however many tabs watch the account.

Quotes: one subscription per symbol with at least one subscriber, on
``senex.md.<symbol>.QuoteReceived``; parsed and serialized once, then offered to each
subscriber's throttle. Market data publishes quotes only for leased symbols, so the hub
leases every subscribed symbol with ``WatchSymbols`` and renews the leases at half their
length while anyone is subscribed; a symbol nobody wants any more is simply not renewed.

Handing a message to a connection never awaits (see `Sink`): a slow client costs only its
own queue, never the fan-out to others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from libs.contracts.commands import WatchReply, WatchSymbols
from libs.contracts.envelope import Event
from libs.contracts.market import QuoteReceived
from libs.contracts.registry import parse_event
from libs.contracts.subjects import account_events_filter, market_subject
from libs.runtime.bus import Bus, BusSubscription, MessageHandler
from libs.runtime.log import get_logger
from libs.runtime.tasks import cancel_and_wait
from services.gateway.context import MARKET_ACCOUNT
from services.gateway.ws.protocol import Outgoing, QuoteTexts, dumps, outgoing, quote_update

#: Symbols per WatchSymbols command (the contract's bound).
LEASE_CHUNK = 500
#: Wait before asking market data again after a lease request failed.
LEASE_RETRY_S = 5.0


class Sink(Protocol):
    """A connection, as the hub sees it; neither method may block."""

    def on_quote(self, symbol: str, texts: QuoteTexts) -> None:
        """A new quote of a subscribed symbol."""

    def on_account_event(self, event: Event, out: Outgoing, text: str) -> None:
        """An event of one of the connection's accounts, as its message and frame."""

    def shutdown(self) -> None:
        """The gateway is stopping: close the connection."""


Lease = Callable[[list[str], int], Awaitable[None]]


class Hub:
    """Reference-counted subscriptions and quote leases for every connection."""

    def __init__(
        self,
        bus_of: Callable[[], Bus],
        *,
        lease_s: int,
        lease: Lease | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus_of = bus_of
        self._lease_s = lease_s
        self._lease = lease or self._watch_symbols
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._account_sinks: dict[str, set[Sink]] = {}
        self._account_subs: dict[str, BusSubscription] = {}
        self._symbol_sinks: dict[str, set[Sink]] = {}
        self._symbol_subs: dict[str, BusSubscription] = {}
        self._sinks: set[Sink] = set()
        self._leased_until: dict[str, float] = {}
        self._lease_wanted = asyncio.Event()
        self._lease_task: asyncio.Task[None] | None = None
        self._closed = False
        self._log = get_logger("gateway.ws.hub")

    # --- connections ---------------------------------------------------------------

    def attach(self, sink: Sink) -> None:
        """Track ``sink`` so `close` can end it."""
        self._sinks.add(sink)

    def detach(self, sink: Sink) -> None:
        self._sinks.discard(sink)

    # --- account events --------------------------------------------------------------

    async def add_accounts(self, sink: Sink, accounts: Iterable[str]) -> None:
        """Deliver the events of ``accounts`` to ``sink`` from now on."""
        async with self._lock:
            new: list[str] = []
            for account in accounts:
                self._account_sinks.setdefault(account, set()).add(sink)
                if account not in self._account_subs:
                    new.append(account)
            for account in new:
                subject = account_events_filter(account)
                self._account_subs[account] = await self._bus_of().subscribe(
                    subject, self._account_handler(account)
                )
            if new:
                await self._bus_of().flush()  # in place at the server before we answer

    async def remove_accounts(self, sink: Sink, accounts: Iterable[str]) -> None:
        """Stop delivering the events of ``accounts`` to ``sink``."""
        async with self._lock:
            for account in accounts:
                sinks = self._account_sinks.get(account)
                if sinks is None:
                    continue
                sinks.discard(sink)
                if not sinks:
                    del self._account_sinks[account]
                    await self._unsubscribe(self._account_subs.pop(account, None))

    def _account_handler(self, account: str) -> MessageHandler:
        async def on_message(subject: str, data: bytes) -> None:
            try:
                event = parse_event(data)
            except Exception as exc:  # one bad message must not stop the subscription
                self._log.warning("account event not parsed", subject=subject, error=repr(exc))
                return
            if event.account_id != account:
                # The subject said this account; the event says another. Never push it.
                self._log.error("event on another account's subject", subject=subject)
                return
            out = outgoing(event)
            if out is None:
                return
            text = dumps(out.message)
            for sink in tuple(self._account_sinks.get(account, ())):
                sink.on_account_event(event, out, text)

        return on_message

    # --- quotes ----------------------------------------------------------------------

    async def add_symbols(self, sink: Sink, symbols: Iterable[str]) -> None:
        """Offer quotes of ``symbols`` to ``sink`` from now on; lease the new ones."""
        async with self._lock:
            new: list[str] = []
            for symbol in symbols:
                self._symbol_sinks.setdefault(symbol, set()).add(sink)
                if symbol not in self._symbol_subs:
                    new.append(symbol)
            for symbol in new:
                self._symbol_subs[symbol] = await self._bus_of().subscribe(
                    market_subject(symbol, "QuoteReceived"), self._on_quote
                )
            if new:
                await self._bus_of().flush()  # `subscribed` promises the next quote
                self._ensure_lease_task()
                self._lease_wanted.set()

    async def remove_symbols(self, sink: Sink, symbols: Iterable[str]) -> None:
        """Stop offering quotes of ``symbols`` to ``sink``."""
        async with self._lock:
            for symbol in symbols:
                sinks = self._symbol_sinks.get(symbol)
                if sinks is None:
                    continue
                sinks.discard(sink)
                if not sinks:
                    del self._symbol_sinks[symbol]
                    self._leased_until.pop(symbol, None)
                    await self._unsubscribe(self._symbol_subs.pop(symbol, None))

    async def _on_quote(self, subject: str, data: bytes) -> None:
        try:
            event = parse_event(data)
        except Exception as exc:  # one bad message must not stop the subscription
            self._log.warning("quote not parsed", subject=subject, error=repr(exc))
            return
        if not isinstance(event, QuoteReceived):
            return
        sinks = self._symbol_sinks.get(event.symbol)
        if not sinks:
            return
        texts = quote_update(event)
        for sink in tuple(sinks):
            sink.on_quote(event.symbol, texts)

    # --- leases ----------------------------------------------------------------------

    def _ensure_lease_task(self) -> None:
        if self._lease_task is None or self._lease_task.done():
            self._lease_task = asyncio.create_task(self._renew(), name="gateway-quote-leases")

    def _due(self, now: float) -> list[str]:
        """Subscribed symbols without a lease, or with less than half of one left."""
        half = self._lease_s / 2
        return [s for s in self._symbol_sinks if self._leased_until.get(s, 0.0) - now < half]

    async def _renew(self) -> None:
        while not self._closed:
            due = self._due(self._monotonic())
            wait = self._lease_s / 2
            if due:
                try:
                    for start in range(0, len(due), LEASE_CHUNK):
                        chunk = due[start : start + LEASE_CHUNK]
                        await self._lease(chunk, self._lease_s)
                        until = self._monotonic() + self._lease_s
                        for symbol in chunk:
                            if symbol in self._symbol_sinks:
                                self._leased_until[symbol] = until
                except Exception as exc:  # market data down: quotes resume once it answers
                    self._log.warning(
                        "quote lease not granted; retrying", symbols=len(due), error=repr(exc)
                    )
                    wait = LEASE_RETRY_S
            self._lease_wanted.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lease_wanted.wait(), timeout=wait)

    async def _watch_symbols(self, symbols: list[str], lease_s: int) -> None:
        command = WatchSymbols(
            account_id=MARKET_ACCOUNT, symbols=tuple(symbols), lease_seconds=lease_s
        )
        await self._bus_of().request(command, WatchReply)

    # --- lifecycle -------------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection and drop every subscription."""
        self._closed = True
        for sink in tuple(self._sinks):
            sink.shutdown()
        if self._lease_task is not None:
            await cancel_and_wait([self._lease_task])
        async with self._lock:
            for sub in (*self._account_subs.values(), *self._symbol_subs.values()):
                await self._unsubscribe(sub)
            self._account_subs.clear()
            self._symbol_subs.clear()
            self._account_sinks.clear()
            self._symbol_sinks.clear()

    async def _unsubscribe(self, sub: BusSubscription | None) -> None:
        if sub is not None:
            await self._bus_of().unsubscribe(sub)  # quiet when the connection is closing
