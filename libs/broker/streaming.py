"""Streaming on top of the SDK's DXLinkStreamer and AlertStreamer, one pair per account.

`MarketStream` (DXLink) hands out quote, Greeks and daily-candle subscriptions;
`AccountStream` (the account streamer) hands out order, balance and position
notifications. Both yield the adapter's own frozen values (`libs.broker.models`).

Each stream runs one supervisor task that opens the SDK streamer, subscribes what its
consumers want and pumps events to them. When the socket drops (or cannot open) the
stream reports RECONNECTING, waits out an exponential backoff in real time (0.5, 1, 2,
4 ... capped at 30 s; reset once connected again) and reconnects, subscribing each
wanted symbol exactly once on the new socket. Consumers keep their `Subscription`
across reconnects. Failures are translated with `libs.broker.errors` and reported in
`health()`; they never end a subscription.

Quotes and Greeks are latest-wins per consumer (a bounded queue drops the oldest);
candles and account notifications are never dropped. A re-subscription after a
reconnect replays candle history: consumers treat candles as upserts by day (identical
repeats are not delivered twice to the same consumer).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar, cast

from httpx2.websockets import HTTPXWSException
from tastytrade.account import Account, AccountBalance, CurrentPosition
from tastytrade.dxfeed import Candle, Greeks, Quote
from tastytrade.order import PlacedOrder
from tastytrade.streamer import AlertStreamer, DXLinkStreamer

from libs.broker.errors import CURRENT_TRACE, CallTrace, Operation, translate
from libs.broker.mapping import (
    DAILY_INTERVAL,
    UnmappableOrder,
    balances_from_sdk,
    candle_from_sdk,
    candle_ticker,
    greeks_from_sdk,
    order_from_sdk,
    position_from_sdk,
    quote_from_sdk,
    streamer_symbol,
)
from libs.broker.models import (
    Balances,
    BrokerOrder,
    BrokerPosition,
    DailyCandle,
    StreamGreeks,
    StreamHealth,
    StreamQuote,
    StreamState,
)
from libs.broker.session import BrokerSession
from libs.contracts.errors import BrokerUnavailable, SenexError
from libs.runtime.clock import NEW_YORK, Clock, SystemClock
from libs.runtime.log import get_logger
from libs.runtime.tasks import cancel_and_wait

T = TypeVar("T")

_log = get_logger("broker.streaming")

#: Backoff of reconnects (real seconds): first delay, factor, cap.
BACKOFF_FIRST_S = 0.5
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 30.0
#: Quotes/Greeks a slow consumer may have queued before the oldest are dropped.
LATEST_WINS_DEPTH = 256


def backoff_delay(attempt: int) -> float:
    """The wait before reconnect ``attempt`` (1-based): 0.5, 1, 2, 4 ... capped at 30 s."""
    return min(BACKOFF_CAP_S, BACKOFF_FIRST_S * BACKOFF_FACTOR ** max(0, attempt - 1))


def stream_error(exc: BaseException, trace: CallTrace | None = None) -> SenexError:
    """The `SenexError` for a stream failure (exception groups unwrapped to their first leaf)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, HTTPXWSException):
        return BrokerUnavailable(f"the broker's stream disconnected ({type(exc).__name__})")
    return translate(exc, trace or CallTrace(), Operation.READ)


_END = object()


class Subscription(Generic[T]):
    """What one consumer receives; iterate it, and close it (or use ``async with``).

    Closing removes the consumer; the broker subscription is dropped once no consumer
    wants it. The iteration ends when the subscription or the stream is closed.
    """

    def __init__(self, on_close: Callable[[Subscription[T]], None], maxlen: int | None) -> None:
        self._items: deque[Any] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self._on_close = on_close
        self._closed = False
        self.dropped = 0
        """Items dropped because the consumer fell behind (latest-wins streams only)."""

    def _put(self, item: T | object) -> None:
        if self._closed:
            return
        if self._items.maxlen is not None and len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    def _end(self) -> None:
        self._put(_END)
        self._closed = True

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if item is _END:
            raise StopAsyncIteration
        result: T = item
        return result

    async def get(self, timeout: float | None = None) -> T:
        """The next item (``TimeoutError`` after ``timeout`` real seconds)."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    def close(self) -> None:
        """Stop receiving; pending items are discarded."""
        if not self._closed:
            self._items.clear()
            self._end()
            self._on_close(self)

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


@dataclass(eq=False)
class _Consumer:
    kind: str
    keys: frozenset[str]
    sub: Subscription[Any]
    start: datetime | None = None
    seen: dict[Any, Any] = field(default_factory=dict)


class _SupervisedStream(ABC):
    """The reconnect loop and health shared by both streams."""

    name = "stream"

    def __init__(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Clock | None = None,
    ) -> None:
        self._sleep = sleep
        self._clock: Clock = clock or SystemClock()
        self._state = StreamState.STOPPED
        self._reconnects = 0
        self._last_error: SenexError | None = None
        self._task: asyncio.Task[None] | None = None
        self._consumers: list[_Consumer] = []
        self._connected = asyncio.Event()
        self._dirty = asyncio.Event()

    # --- health -------------------------------------------------------------------------

    @property
    def state(self) -> StreamState:
        """CONNECTING, CONNECTED, RECONNECTING or STOPPED."""
        return self._state

    def _subscription_count(self) -> int:
        return 0

    def health(self) -> StreamHealth:
        """State, reconnects and the last failure, for health checks."""
        error = self._last_error
        return StreamHealth(
            name=self.name,
            state=self._state,
            reconnects=self._reconnects,
            last_error_kind=error.kind.value if error is not None else None,
            last_error=error.message if error is not None else None,
            subscriptions=self._subscription_count(),
        )

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once the stream is connected and subscribed (``TimeoutError`` otherwise)."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the supervisor (connects in the background)."""
        if self._task is None:
            self._state = StreamState.CONNECTING
            self._task = asyncio.create_task(self._supervise(), name=f"{self.name}-supervisor")

    async def aclose(self) -> None:
        """Stop the stream and end every subscription."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])
        self._state = StreamState.STOPPED
        self._connected.clear()
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.sub._end()

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            trace = CallTrace()
            token = CURRENT_TRACE.set(trace)
            try:
                await self._connect_and_serve()
                error: SenexError = BrokerUnavailable(f"{self.name} ended unexpectedly")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = stream_error(exc, trace)
            finally:
                CURRENT_TRACE.reset(token)
            if self._state is StreamState.CONNECTED:
                attempt = 0  # the last connection worked: start the backoff afresh
            attempt += 1
            self._connected.clear()
            self._state = StreamState.RECONNECTING
            self._reconnects += 1
            self._last_error = error
            delay = backoff_delay(attempt)
            _log.warning(
                "stream lost; reconnecting",
                stream=self.name,
                kind=error.kind.value,
                error=error.message,
                attempt=attempt,
                delay_s=delay,
            )
            await self._sleep(delay)

    @abstractmethod
    async def _connect_and_serve(self) -> None:
        """Open the socket, (re)subscribe, call `_mark_connected`, serve until it drops."""

    def _mark_connected(self) -> None:
        self._state = StreamState.CONNECTED
        self._connected.set()
        _log.info("stream connected", stream=self.name, reconnects=self._reconnects)

    async def _run_pumps(self, pumps: Iterable[Awaitable[None]]) -> None:
        """Run the pumps until one fails (or the SDK cancels us on a dropped socket)."""
        tasks = [asyncio.ensure_future(p) for p in pumps]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _remove(self, sub: Subscription[Any]) -> None:
        self._consumers = [c for c in self._consumers if c.sub is not sub]
        self._dirty.set()

    def _add(
        self, kind: str, keys: Iterable[str], maxlen: int | None, start: datetime | None = None
    ) -> Subscription[Any]:
        sub: Subscription[Any] = Subscription(self._remove, maxlen)
        self._consumers.append(_Consumer(kind, frozenset(keys), sub, start))
        self._dirty.set()
        return sub

    def _deliver(self, kind: str, key: str, item: object) -> None:
        for consumer in self._consumers:
            if consumer.kind == kind and key in consumer.keys:
                consumer.sub._put(item)


# --- DXLink ----------------------------------------------------------------------------

QUOTE, GREEKS, CANDLE = "Quote", "Greeks", "Candle"
_EVENT_CLASSES: dict[str, type[Quote] | type[Greeks]] = {QUOTE: Quote, GREEKS: Greeks}

DXLinkFactory = Callable[[], AbstractAsyncContextManager[DXLinkStreamer]]


_Streamer = TypeVar("_Streamer", DXLinkStreamer, AlertStreamer)


def _opener(
    streamer_class: type[_Streamer], session: BrokerSession
) -> Callable[[], AbstractAsyncContextManager[_Streamer]]:
    @asynccontextmanager
    async def open_streamer() -> AsyncIterator[_Streamer]:
        await session.ensure_fresh()  # a websocket authenticates with the current token
        async with streamer_class(session.sdk) as streamer:
            yield streamer

    return open_streamer


def dxlink_factory(session: BrokerSession) -> DXLinkFactory:
    """Opens a `DXLinkStreamer` on the account's session (token refreshed first)."""
    return _opener(DXLinkStreamer, session)


class MarketStream(_SupervisedStream):
    """Quotes, Greeks and daily candles over DXLink, resubscribed after every reconnect.

    ``quotes``/``greeks`` take tickers or OCC symbols (mapped to streamer symbols both
    ways); ``daily_candles`` takes a ticker and a start instant.
    """

    name = "dxlink"

    def __init__(
        self,
        session: BrokerSession | None = None,
        *,
        connect: DXLinkFactory | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Clock | None = None,
    ) -> None:
        """Give the account's ``session``, or ``connect`` (a factory of SDK streamers)."""
        super().__init__(sleep=sleep, clock=clock)
        if connect is None:
            if session is None:
                raise ValueError("MarketStream needs a session or a connect factory")
            connect = dxlink_factory(session)
        self._connect = connect
        self._names: dict[str, str] = {}
        """Streamer symbol -> the symbol the consumer asked for."""
        self._active: set[tuple[str, str, int | None]] = set()
        """(kind, streamer symbol or ticker, candle start ms) subscribed on this socket."""

    async def __aenter__(self) -> MarketStream:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _subscription_count(self) -> int:
        return len(self._active)

    # --- consumers ----------------------------------------------------------------------

    def quotes(self, symbols: Iterable[str]) -> Subscription[StreamQuote]:
        """Best bid/ask of ``symbols`` (tickers or OCC symbols), latest wins."""
        return self._add(QUOTE, self._map_symbols(symbols), LATEST_WINS_DEPTH)

    def greeks(self, symbols: Iterable[str]) -> Subscription[StreamGreeks]:
        """The broker's Greeks of ``symbols`` (OCC symbols), latest wins."""
        return self._add(GREEKS, self._map_symbols(symbols), LATEST_WINS_DEPTH)

    def daily_candles(self, symbol: str, start: datetime) -> Subscription[DailyCandle]:
        """Regular-hours daily candles of ``symbol`` from ``start`` on (history, then live)."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        return self._add(CANDLE, [symbol], None, start)

    def _map_symbols(self, symbols: Iterable[str]) -> list[str]:
        mapped = []
        for symbol in symbols:
            dx = streamer_symbol(symbol)
            self._names[dx] = symbol
            mapped.append(dx)
        if not mapped:
            raise ValueError("subscribe to at least one symbol")
        return mapped

    def _wanted(self) -> set[tuple[str, str, int | None]]:
        wanted: set[tuple[str, str, int | None]] = set()
        for consumer in self._consumers:
            start = None
            if consumer.start is not None:
                start = round(consumer.start.timestamp() * 1000)
            wanted.update((consumer.kind, key, start) for key in consumer.keys)
        return wanted

    # --- connection ---------------------------------------------------------------------

    async def _connect_and_serve(self) -> None:
        self._active = set()
        async with self._connect() as streamer:
            await self._sync(streamer)
            self._mark_connected()
            await self._run_pumps(
                [
                    self._pump_quotes(streamer),
                    self._pump_greeks(streamer),
                    self._pump_candles(streamer),
                    self._keep_synced(streamer),
                ]
            )

    async def _keep_synced(self, streamer: DXLinkStreamer) -> None:
        while True:
            await self._dirty.wait()
            await self._sync(streamer)

    async def _sync(self, streamer: DXLinkStreamer) -> None:
        """Subscribe what is wanted and not yet subscribed; drop what nobody wants."""
        self._dirty.clear()
        wanted = self._wanted()
        add = wanted - self._active
        remove = self._active - wanted
        for kind in (QUOTE, GREEKS):
            symbols = sorted(key for k, key, _ in add if k == kind)
            if symbols:
                await streamer.subscribe(_EVENT_CLASSES[kind], symbols)
            gone = sorted(key for k, key, _ in remove if k == kind)
            if gone:
                await streamer.unsubscribe(_EVENT_CLASSES[kind], gone)
        for _, ticker, start_ms in sorted((a for a in add if a[0] == CANDLE), key=str):
            start = datetime.fromtimestamp((start_ms or 0) / 1000, tz=UTC)
            await streamer.subscribe_candle([ticker], DAILY_INTERVAL, start_time=start)
        still = {key for k, key, _ in wanted if k == CANDLE}
        for ticker in sorted({key for k, key, _ in remove if k == CANDLE} - still):
            await streamer.unsubscribe_candle(ticker, DAILY_INTERVAL)
        self._active = (self._active | add) - remove

    async def _pump_quotes(self, streamer: DXLinkStreamer) -> None:
        async for event in streamer.listen(Quote):
            symbol = self._names.get(event.event_symbol, event.event_symbol)
            try:
                quote = quote_from_sdk(event, symbol, self._clock.now())
            except ValueError as exc:
                _log.info("skipping an unreadable quote", symbol=symbol, error=str(exc))
                continue
            self._deliver(QUOTE, event.event_symbol, quote)

    async def _pump_greeks(self, streamer: DXLinkStreamer) -> None:
        async for event in streamer.listen(Greeks):
            symbol = self._names.get(event.event_symbol, event.event_symbol)
            try:
                greeks = greeks_from_sdk(event, symbol, self._clock.now())
            except ValueError as exc:
                _log.info("skipping unreadable greeks", symbol=symbol, error=str(exc))
                continue
            self._deliver(GREEKS, event.event_symbol, greeks)

    async def _pump_candles(self, streamer: DXLinkStreamer) -> None:
        async for event in streamer.listen(Candle):
            try:
                candle = candle_from_sdk(event)
            except ValueError as exc:
                _log.info("skipping an unreadable candle", error=str(exc))
                continue
            ticker = candle_ticker(event.event_symbol)
            for consumer in self._consumers:
                if consumer.kind != CANDLE or ticker not in consumer.keys:
                    continue
                if consumer.start is not None and candle.day < _day(consumer.start):
                    continue
                if consumer.seen.get(candle.day) == candle:
                    continue
                consumer.seen[candle.day] = candle
                consumer.sub._put(candle)


def _day(instant: datetime) -> date:
    return instant.astimezone(NEW_YORK).date()


# --- account streamer ------------------------------------------------------------------

ORDERS, BALANCES, POSITIONS = "orders", "balances", "positions"


@dataclass(frozen=True)
class _AccountRef:
    account_number: str


AlertFactory = Callable[[], AbstractAsyncContextManager[AlertStreamer]]


def alert_factory(session: BrokerSession) -> AlertFactory:
    """Opens an `AlertStreamer` on the account's session (token refreshed first)."""
    return _opener(AlertStreamer, session)


class AccountStream(_SupervisedStream):
    """Order, balance and position notifications of one account, across reconnects.

    A position notification with ``quantity == 0`` reports a closed position. After a
    reconnect, notifications sent while the socket was down are lost: reconcile from
    REST (`BrokerAdapter.get_live_orders` etc.) when `health().reconnects` grows.
    """

    name = "account"

    def __init__(
        self,
        account_number: str,
        session: BrokerSession | None = None,
        *,
        connect: AlertFactory | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Clock | None = None,
    ) -> None:
        """Give the account's ``session``, or ``connect`` (a factory of SDK streamers)."""
        super().__init__(sleep=sleep, clock=clock)
        if connect is None:
            if session is None:
                raise ValueError("AccountStream needs a session or a connect factory")
            connect = alert_factory(session)
        self._account_number = account_number
        self._connect = connect
        self._subscribed = False

    async def __aenter__(self) -> AccountStream:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _subscription_count(self) -> int:
        return 1 if self._subscribed else 0

    def orders(self) -> Subscription[BrokerOrder]:
        """Every order change of the account (orders Senex cannot map are skipped)."""
        return self._add(ORDERS, [self._account_number], None)

    def balances(self) -> Subscription[Balances]:
        """Balance updates of the account."""
        return self._add(BALANCES, [self._account_number], None)

    def positions(self) -> Subscription[BrokerPosition]:
        """Position changes of the account (quantity 0: closed)."""
        return self._add(POSITIONS, [self._account_number], None)

    async def _connect_and_serve(self) -> None:
        self._subscribed = False
        async with self._connect() as streamer:
            # The SDK reads only the account number of what it is given.
            account = cast(Account, _AccountRef(self._account_number))
            await streamer.subscribe_accounts([account])
            self._subscribed = True
            self._mark_connected()
            await self._run_pumps(
                [
                    self._pump_orders(streamer),
                    self._pump_balances(streamer),
                    self._pump_positions(streamer),
                ]
            )

    async def _pump_orders(self, streamer: AlertStreamer) -> None:
        async for order in streamer.listen(PlacedOrder):
            try:
                mapped = order_from_sdk(order)
            except (UnmappableOrder, ValueError) as exc:
                _log.info("skipping an order notification", order_id=order.id, error=str(exc))
                continue
            self._deliver(ORDERS, mapped.account_number, mapped)

    async def _pump_balances(self, streamer: AlertStreamer) -> None:
        async for balance in streamer.listen(AccountBalance):
            try:
                mapped = balances_from_sdk(balance)
            except ValueError as exc:
                _log.info("skipping a balance notification", error=str(exc))
                continue
            self._deliver(BALANCES, mapped.account_number, mapped)

    async def _pump_positions(self, streamer: AlertStreamer) -> None:
        async for position in streamer.listen(CurrentPosition):
            try:
                mapped = position_from_sdk(position)
            except ValueError as exc:
                _log.info("skipping a position notification", error=str(exc))
                continue
            self._deliver(POSITIONS, mapped.account_number, mapped)
