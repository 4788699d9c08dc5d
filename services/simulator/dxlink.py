"""The DXLink market-data websocket (the SDK's ``DXLinkStreamer``, TASTYTRADE_PROTOCOL.md §6).

Serves Quote (underlyings and ``.QQQ250620P592``-style option symbols), Greeks (options,
from vollib on the simulator's IV surface) and daily Candle history (``QQQ{=1d}`` from
``fromTime``), in the COMPACT format, in the field order the client asked for. Quotes and
greeks are pushed every :data:`PUSH_INTERVAL` real seconds when they changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson
from starlette.websockets import WebSocket
from vollib.black_scholes.greeks import analytical

from services.simulator import chains, clock, market
from services.simulator.broker import Broker
from services.simulator.notifications import QueuedSocket, StreamHub

log = logging.getLogger(__name__)

#: Real seconds between quote/greeks pushes.
PUSH_INTERVAL = 0.25
#: Real seconds between the server's KEEPALIVE frames (the client's timeout is 60 s).
KEEPALIVE_INTERVAL = 30.0
#: FEED_DATA frames stay below this many bytes (the SDK's limit is 65,536).
MAX_FRAME_BYTES = 48_000
#: Most daily candles sent for one subscription (``fromTime`` 0 means "all history").
MAX_DAILY_CANDLES = 1000

DEFAULT_FIELDS: dict[str, list[str]] = {
    "Quote": [
        "eventSymbol",
        "eventTime",
        "sequence",
        "timeNanoPart",
        "bidTime",
        "bidExchangeCode",
        "askTime",
        "askExchangeCode",
        "bidPrice",
        "askPrice",
        "bidSize",
        "askSize",
    ],
    "Greeks": [
        "eventSymbol",
        "eventTime",
        "eventFlags",
        "index",
        "time",
        "sequence",
        "price",
        "volatility",
        "delta",
        "gamma",
        "theta",
        "rho",
        "vega",
    ],
    "Candle": [
        "eventSymbol",
        "eventTime",
        "eventFlags",
        "index",
        "time",
        "sequence",
        "count",
        "volume",
        "vwap",
        "bidVolume",
        "askVolume",
        "impVolatility",
        "openInterest",
        "open",
        "high",
        "low",
        "close",
    ],
}

_STREAMER_OPTION = re.compile(r"^\.([A-Z]{1,6})(\d{6})([CP])(\d+(?:\.\d+)?)$")
_CANDLE = re.compile(r"^([A-Z]{1,6})\{=(\d*)([a-z]+)(?:,[^}]*)?\}$")

Event = dict[str, Any]


def parse_streamer_option(symbol: str) -> chains.OptionSymbol | None:
    """``.QQQ250620P592`` -> the option; None when ``symbol`` is not one."""
    match = _STREAMER_OPTION.match(symbol)
    if match is None:
        return None
    root, ymd, kind, strike = match.groups()
    try:
        expiration = datetime.strptime(ymd, "%y%m%d").date()  # noqa: DTZ007 - a date only
    except ValueError:
        return None
    value = Decimal(strike)
    if value <= 0:
        return None
    return chains.OptionSymbol(root, expiration, kind == "C", value)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def quote_event(broker: Broker, symbol: str, at: datetime) -> Event | None:
    """The Quote of an underlying or an option streamer symbol at ``at``; None if unknown."""
    option = parse_streamer_option(symbol)
    if option is not None:
        if option.root not in market.UNDERLYINGS:
            return None
        quote = broker.option_quote(option, at)
        bid, ask, size = quote.bid, quote.ask, 10
    elif symbol in market.UNDERLYINGS:
        bid, ask = market.underlying_quote(broker.spot(symbol, at))
        size = 100
    else:
        return None
    now = _ms(at)
    return {
        "eventSymbol": symbol,
        "eventTime": now,
        "sequence": 0,
        "timeNanoPart": 0,
        "bidTime": now,
        "bidExchangeCode": "Q",
        "askTime": now,
        "askExchangeCode": "Q",
        "bidPrice": float(bid),
        "askPrice": float(ask),
        "bidSize": size,
        "askSize": size,
    }


def greeks_event(broker: Broker, symbol: str, at: datetime) -> Event | None:
    """The Greeks of an option streamer symbol at ``at``; None for anything else."""
    option = parse_streamer_option(symbol)
    if option is None or option.root not in market.UNDERLYINGS:
        return None
    quote = broker.option_quote(option, at)
    spot = float(broker.spot(option.root, at))
    strike = float(option.strike)
    years = market.years_to_expiry(option.expiration, at)
    rate = float(broker.settings.risk_free_rate)
    flag = "c" if option.is_call else "p"
    if years > 0:
        values = {
            "delta": analytical.delta(flag, spot, strike, years, rate, quote.iv),
            "gamma": analytical.gamma(flag, spot, strike, years, rate, quote.iv),
            "theta": analytical.theta(flag, spot, strike, years, rate, quote.iv),
            "rho": analytical.rho(flag, spot, strike, years, rate, quote.iv),
            "vega": analytical.vega(flag, spot, strike, years, rate, quote.iv),
        }
    else:
        in_the_money = spot > strike if option.is_call else spot < strike
        delta = (1.0 if option.is_call else -1.0) if in_the_money else 0.0
        values = {"delta": delta, "gamma": 0.0, "theta": 0.0, "rho": 0.0, "vega": 0.0}
    now = _ms(at)
    return {
        "eventSymbol": symbol,
        "eventTime": now,
        "eventFlags": 0,
        "index": now << 22,
        "time": now,
        "sequence": 0,
        "price": float(quote.theo),
        "volatility": round(quote.iv, 6),
        **{k: round(float(v), 6) for k, v in values.items()},
    }


def _session_start_ms(day: date) -> int:
    return _ms(datetime.combine(day, time(0), tzinfo=clock.NEW_YORK))


def _daily_candle(
    symbol: str, root: str, day: date, open_: Decimal, close: Decimal, now: int
) -> Event:
    sigma_day = market.UNDERLYINGS[root].annual_vol / math.sqrt(252.0)
    digest = hashlib.blake2b(f"{root}:{day.isoformat()}".encode(), digest_size=4).digest()
    draw = int.from_bytes(digest, "big") / 0xFFFFFFFF
    reach = Decimal(str(round(0.2 * sigma_day * (0.5 + draw), 6)))
    high = market.round_tick(max(open_, close) * (1 + reach))
    low = market.round_tick(min(open_, close) * (1 - reach))
    start = _session_start_ms(day)
    volume = 20_000_000 + int(draw * 30_000_000)
    return {
        "eventSymbol": symbol,
        "eventTime": now,
        "eventFlags": 0,
        "index": start << 22,
        "time": start,
        "sequence": 0,
        "count": 1000 + int(draw * 9000),
        "volume": volume,
        "vwap": float(market.round_tick((high + low + close) / 3)),
        "bidVolume": "NaN",
        "askVolume": "NaN",
        "impVolatility": "NaN",
        "openInterest": 0,
        "open": float(open_),
        "high": float(high),
        "low": float(low),
        "close": float(close),
    }


def candle_events(broker: Broker, symbol: str, from_ms: int, at: datetime) -> list[Event]:
    """Daily candles of ``symbol`` (``QQQ{=1d}`` or ``QQQ{=1d,tho=true}``) with
    ``time >= from_ms``, oldest first, the current session's candle last when it has
    opened. Other intervals are not simulated (empty)."""
    match = _CANDLE.match(symbol)
    if match is None:
        return []
    root, count, unit = match.groups()
    if root not in market.UNDERLYINGS or unit != "d" or count not in ("", "1"):
        return []
    seed = broker.settings.seed
    days: list[date] = []
    day = clock.last_completed_session(at)
    while len(days) < MAX_DAILY_CANDLES and _session_start_ms(day) >= from_ms:
        days.append(day)
        day = clock.previous_session_before(day)
    days.reverse()
    now = _ms(at)
    events: list[Event] = []
    previous = market.model_close(seed, root, day)
    for d in days:
        close = market.model_close(seed, root, d)
        events.append(_daily_candle(symbol, root, d, previous, close, now))
        previous = close
    today = clock.ny_date(at)
    bounds = clock.session_bounds(today)
    last = days[-1] if days else None
    opened = bounds is not None and bounds[0] <= at < bounds[1]
    if opened and today != last and _session_start_ms(today) >= from_ms:
        open_ = market.model_close(seed, root, clock.previous_session_before(today))
        events.append(_daily_candle(symbol, root, today, open_, broker.spot(root, at), now))
    return events


class _Channel:
    """One FEED channel: its event fields and subscriptions."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.fields: dict[str, list[str]] = {}
        #: (event type, symbol) subscriptions pushed periodically.
        self.live: set[tuple[str, str]] = set()
        #: Last values sent per subscription (only changes are pushed).
        self.last: dict[tuple[str, str], tuple[Any, ...]] = {}


class DXLinkSession(QueuedSocket):
    """One DXLink connection."""

    def __init__(self, websocket: WebSocket, hub: StreamHub) -> None:
        super().__init__("dxlink", websocket)
        self.hub = hub
        self.authorized = False
        self.channels: dict[int, _Channel] = {}

    @property
    def broker(self) -> Broker:
        """The simulated broker."""
        return self.hub.broker

    async def run(self) -> None:
        """Accept and serve until the client leaves or the socket is dropped."""
        await self.websocket.accept()
        await self.serve(self.hub, self._reader(), self._pusher(), self._keepalive())

    async def _reader(self) -> None:
        while True:
            raw = await self.websocket.receive_text()
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._error("INVALID_MESSAGE", "frame is not JSON")
                continue
            if not isinstance(message, dict):
                self._error("INVALID_MESSAGE", "frame is not an object")
                continue
            self.handle(message)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_INTERVAL)
            self.send_json({"type": "KEEPALIVE", "channel": 0})

    async def _pusher(self) -> None:
        while True:
            await asyncio.sleep(PUSH_INTERVAL)
            if self.channels:
                try:
                    self.push()
                except Exception:
                    log.exception("dxlink push failed")

    def _error(self, error: str, message: str) -> None:
        self.send_json({"type": "ERROR", "channel": 0, "error": error, "message": message})

    def handle(self, message: dict[str, Any]) -> None:
        """React to one client frame."""
        kind = message.get("type")
        channel = message.get("channel", 0)
        if kind == "SETUP":
            self.send_json(
                {
                    "type": "SETUP",
                    "channel": 0,
                    "keepaliveTimeout": 60,
                    "acceptKeepaliveTimeout": 60,
                    "version": "senex-sim",
                }
            )
            self.send_json({"type": "AUTH_STATE", "channel": 0, "state": "UNAUTHORIZED"})
        elif kind == "AUTH":
            if message.get("token") in self.hub.quote_tokens:
                self.authorized = True
                self.send_json(
                    {"type": "AUTH_STATE", "channel": 0, "state": "AUTHORIZED", "userId": "sim"}
                )
            else:
                self._error("UNAUTHORIZED", "invalid or expired quote token")
        elif kind == "KEEPALIVE":
            pass
        elif not self.authorized:
            self._error("UNAUTHORIZED", "authorize first")
        elif not isinstance(channel, int):
            self._error("INVALID_MESSAGE", "channel must be an integer")
        elif kind == "CHANNEL_REQUEST":
            self.channels.setdefault(channel, _Channel(channel))
            self.send_json(
                {
                    "type": "CHANNEL_OPENED",
                    "channel": channel,
                    "service": message.get("service", "FEED"),
                    "parameters": message.get("parameters", {}),
                }
            )
        elif kind == "CHANNEL_CANCEL":
            if self.channels.pop(channel, None) is not None:
                self.send_json({"type": "CHANNEL_CLOSED", "channel": channel})
        elif channel not in self.channels:
            self._error("INVALID_MESSAGE", f"channel {channel} is not open")
        elif kind == "FEED_SETUP":
            self._feed_setup(self.channels[channel], message)
        elif kind == "FEED_SUBSCRIPTION":
            self._subscription(self.channels[channel], message)
        else:
            self._error("UNSUPPORTED_PROTOCOL", f"unknown message type {kind!r}")

    def _feed_setup(self, channel: _Channel, message: dict[str, Any]) -> None:
        accepted = message.get("acceptEventFields")
        if isinstance(accepted, dict):
            for event_type, fields in accepted.items():
                if isinstance(fields, list) and all(isinstance(f, str) for f in fields):
                    channel.fields[str(event_type)] = list(fields)
        self.send_json(
            {
                "type": "FEED_CONFIG",
                "channel": channel.number,
                "dataFormat": "COMPACT",
                "aggregationPeriod": message.get("acceptAggregationPeriod", 0.1),
                "eventFields": {
                    t: self._fields(channel, t) for t in channel.fields or DEFAULT_FIELDS
                },
            }
        )

    def _subscription(self, channel: _Channel, message: dict[str, Any]) -> None:
        if message.get("reset"):
            channel.live.clear()
            channel.last.clear()
        for item in _items(message.get("remove")):
            key = (str(item.get("type")), str(item.get("symbol")))
            channel.live.discard(key)
            channel.last.pop(key, None)
        now = self.broker.now()
        added: list[tuple[str, str]] = []
        for item in _items(message.get("add")):
            event_type, symbol = str(item.get("type")), str(item.get("symbol"))
            if event_type == "Candle":
                from_time = item.get("fromTime", 0)
                from_ms = int(from_time) if isinstance(from_time, int | float) else 0
                self._send_events(
                    channel, "Candle", candle_events(self.broker, symbol, from_ms, now)
                )
            elif event_type in ("Quote", "Greeks"):
                channel.live.add((event_type, symbol))
                channel.last.pop((event_type, symbol), None)
                added.append((event_type, symbol))
        if added:
            self.push(channel, only=set(added))

    def push(
        self, only_channel: _Channel | None = None, only: set[tuple[str, str]] | None = None
    ) -> None:
        """Send the Quote/Greeks events that changed since last sent."""
        now = self.broker.now()
        channels = [only_channel] if only_channel is not None else list(self.channels.values())
        for channel in channels:
            batches: dict[str, list[Event]] = {}
            for key in sorted(channel.live if only is None else only & channel.live):
                event_type, symbol = key
                builder = quote_event if event_type == "Quote" else greeks_event
                event = builder(self.broker, symbol, now)
                if event is None:
                    continue
                signature = tuple(v for k, v in event.items() if k not in _TIME_FIELDS)
                if channel.last.get(key) == signature:
                    continue
                channel.last[key] = signature
                batches.setdefault(event_type, []).append(event)
            for event_type, events in batches.items():
                self._send_events(channel, event_type, events)

    def _fields(self, channel: _Channel, event_type: str) -> list[str]:
        return channel.fields.get(event_type) or DEFAULT_FIELDS.get(event_type, ["eventSymbol"])

    def _send_events(self, channel: _Channel, event_type: str, events: list[Event]) -> None:
        """COMPACT FEED_DATA frames of ``events``, each below :data:`MAX_FRAME_BYTES`."""
        fields = self._fields(channel, event_type)
        chunk: list[Any] = []
        size = 0
        for event in events:
            record = [event.get(f, "NaN") for f in fields]
            record_size = len(orjson.dumps(record))
            if chunk and size + record_size > MAX_FRAME_BYTES:
                self._feed_data(channel.number, event_type, chunk)
                chunk, size = [], 0
            chunk.extend(record)
            size += record_size
        if chunk:
            self._feed_data(channel.number, event_type, chunk)

    def _feed_data(self, channel: int, event_type: str, values: list[Any]) -> None:
        self.send_json({"type": "FEED_DATA", "channel": channel, "data": [event_type, values]})


_TIME_FIELDS = frozenset({"eventTime", "bidTime", "askTime", "index", "time"})


def _items(raw: Any) -> list[dict[str, Any]]:
    return [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
