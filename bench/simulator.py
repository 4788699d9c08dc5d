"""Broker simulator throughput and latency, seen through the real tastytrade SDK.

    python bench/simulator.py [--seconds S] [--options N] [--speed X] [--orders N]

Starts its own broker simulator (in-process, background thread, fresh temporary data
directory) and points a real SDK ``Session`` at it, then measures:

* ``dxlink_quote_events_per_s``: Quote events one ``DXLinkStreamer`` receives per
  second, subscribed at once to every underlying plus ``--options`` option streamer
  symbols of QQQ's nested chain, with the simulated clock running ``--speed`` times
  real time so prices keep moving; counted over ``--seconds``;
* ``order_round_trip_ms_*``: from just before ``account.place_order`` of a marketable
  put spread (limit at the natural price) to the arrival of its Filled ``PlacedOrder``
  notification on an ``AlertStreamer`` subscribed to the account, ``--orders`` times.

Prints the figures and writes ``bench/results/simulator.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tastytrade import Account, AlertStreamer, DXLinkStreamer, Session  # noqa: E402
from tastytrade.dxfeed import Quote  # noqa: E402
from tastytrade.instruments import NestedOptionChain  # noqa: E402
from tastytrade.order import (  # noqa: E402
    InstrumentType,
    Leg,
    LimitOrder,
    OrderAction,
    OrderStatus,
    PlacedOrder,
)

from libs.broker.session import paper_redirect  # noqa: E402
from services.simulator import dxlink, market  # noqa: E402
from services.simulator.customers import (  # noqa: E402
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from services.simulator.server import SimulatorServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "simulator.json"
ACCOUNT = "5WT00001"
#: A Tuesday mid-session (as the tests' fixture), so the market is open throughout.
SIM_START = datetime.fromisoformat("2025-06-03T11:00:00-04:00")
#: Bound on any single wait (a subscription's first event, one order's notification).
WAIT = 10.0


def sdk_session(server: SimulatorServer) -> Session:
    """A real SDK ``Session`` whose HTTP and websocket traffic goes to ``server``."""
    return Session(
        DEFAULT_CLIENT_SECRET,
        DEFAULT_REFRESH_TOKEN,
        event_hooks={"request": [paper_redirect(server.url)]},
        trust_env=False,
    )


def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """Call the simulator's /sim/ control API."""
    raw = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=raw, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        return json.loads(response.read())


async def acontrol(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """:func:`control` off the event loop (the simulator shares this process)."""
    return await asyncio.to_thread(control, server, method, path, body)


# --- DXLink quote throughput ------------------------------------------------------


async def option_streamer_symbols(session: Session, underlying: str, n: int) -> list[str]:
    """``n`` put and call streamer symbols of ``underlying``, nearest expirations first,
    strikes nearest the middle of each expiration first."""
    chain = (await NestedOptionChain.get(session, underlying))[0]
    symbols: list[str] = []
    for expiration in sorted(chain.expirations, key=lambda e: e.days_to_expiration):
        strikes = sorted(expiration.strikes, key=lambda s: s.strike_price)
        middle = len(strikes) // 2
        by_distance = sorted(range(len(strikes)), key=lambda i: abs(i - middle))
        for i in by_distance:
            symbols += [strikes[i].put_streamer_symbol, strikes[i].call_streamer_symbol]
            if len(symbols) >= n:
                return symbols[:n]
    if len(symbols) < n:
        raise RuntimeError(f"{underlying}'s chain has only {len(symbols)} option symbols")
    return symbols


async def quote_throughput(
    server: SimulatorServer, session: Session, options: int, seconds: float, speed: float
) -> dict[str, Any]:
    symbols = sorted(market.UNDERLYINGS)
    symbols += await option_streamer_symbols(session, "QQQ", options)
    await acontrol(server, "PUT", "/sim/clock", {"speed": speed})
    async with DXLinkStreamer(session) as streamer:
        await streamer.subscribe(Quote, symbols)
        # Warm-up: the subscription's first snapshot is not part of the steady state.
        try:
            await asyncio.wait_for(streamer.get_event(Quote), WAIT)
        except TimeoutError:
            raise RuntimeError(f"no Quote event within {WAIT} s of subscribing") from None
        warm_deadline = time.perf_counter() + 1.0
        while time.perf_counter() < warm_deadline:
            try:
                await asyncio.wait_for(streamer.get_event(Quote), WAIT)
            except TimeoutError:
                raise RuntimeError(f"Quote events stopped for {WAIT} s (warm-up)") from None
        events = 0
        seen: set[str] = set()
        started = time.perf_counter()
        deadline = started + seconds
        while (left := deadline - time.perf_counter()) > 0:
            try:
                quote = await asyncio.wait_for(streamer.get_event(Quote), min(left, WAIT))
            except TimeoutError:
                continue
            events += 1
            seen.add(quote.event_symbol)
        elapsed = time.perf_counter() - started
    sim_clock = await acontrol(server, "GET", "/sim/clock")
    return {
        "dxlink_quote_events_per_s": round(events / elapsed),
        "dxlink_quote_events": events,
        "dxlink_seconds": round(elapsed, 2),
        "dxlink_symbols_subscribed": len(symbols),
        "dxlink_symbols_seen": len(seen),
        # The simulator pushes each symbol's Quote at most once per push interval (and
        # only when it changed): the most this subscription could receive.
        "dxlink_ceiling_events_per_s": round(len(symbols) / dxlink.PUSH_INTERVAL),
        "dxlink_clock_speed": speed,
        "dxlink_sim_time_at_end": sim_clock["now"],
        # False would mean prices went flat (after the close) during the window.
        "dxlink_market_open_at_end": sim_clock["market-open"],
    }


# --- order round trip -------------------------------------------------------------


async def put_spread(session: Session, width: int) -> tuple[str, str]:
    """(short, long) OCC symbols of a SPY put spread ~30-50 DTE near the money."""
    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    expiration = next(e for e in chain.expirations if 30 <= e.days_to_expiration <= 50)
    strikes = {s.strike_price: s for s in expiration.strikes}
    middle = sorted(strikes)[len(strikes) // 2]
    return strikes[middle].put, strikes[middle - width].put


def spread_order(short: str, long: str, price: Decimal) -> LimitOrder:
    legs = [
        Leg(
            instrument_type=InstrumentType.EQUITY_OPTION,
            symbol=short,
            action=OrderAction.SELL_TO_OPEN,
            quantity=1,
        ),
        Leg(
            instrument_type=InstrumentType.EQUITY_OPTION,
            symbol=long,
            action=OrderAction.BUY_TO_OPEN,
            quantity=1,
        ),
    ]
    return LimitOrder(legs=legs, price=price)


async def natural(server: SimulatorServer, short: str, long: str) -> Decimal:
    """The spread's natural credit: short's bid minus long's ask."""
    s = await acontrol(server, "GET", "/sim/quotes/" + short.replace(" ", "%20"))
    lg = await acontrol(server, "GET", "/sim/quotes/" + long.replace(" ", "%20"))
    return Decimal(s["bid"]) - Decimal(lg["ask"])


async def order_round_trips(
    server: SimulatorServer, session: Session, orders: int
) -> dict[str, Any]:
    # Prices hold still, so the natural read just before each order is still marketable.
    await acontrol(server, "PUT", "/sim/clock", {"speed": 0})
    account = await Account.get(session, ACCOUNT)
    short, long = await put_spread(session, width=1)
    filled_at: dict[int, float] = {}
    arrived = asyncio.Event()

    async with AlertStreamer(session) as streamer:
        await streamer.subscribe_accounts([account])

        async def listen() -> None:
            async for order in streamer.listen(PlacedOrder):
                if order.status == OrderStatus.FILLED:
                    filled_at.setdefault(order.id, time.perf_counter())
                    arrived.set()

        listener = asyncio.create_task(listen())
        try:
            round_trips: list[float] = []
            for i in range(orders):
                price = await natural(server, short, long)
                order = spread_order(short, long, price)
                started = time.perf_counter()
                placed = await account.place_order(session, order, dry_run=False)
                order_id = placed.order.id
                wait_until = started + WAIT
                while order_id not in filled_at:
                    if listener.done():
                        listener.result()
                        raise RuntimeError("the AlertStreamer listener ended")
                    left = wait_until - time.perf_counter()
                    if left <= 0:
                        raise RuntimeError(
                            f"order {i + 1} (id {order_id}, status {placed.order.status}): "
                            f"no Filled notification within {WAIT} s"
                        )
                    arrived.clear()
                    if order_id in filled_at:
                        break
                    try:
                        await asyncio.wait_for(arrived.wait(), left)
                    except TimeoutError:
                        continue
                round_trips.append((filled_at[order_id] - started) * 1000)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
    ordered = sorted(round_trips)
    return {
        "orders": len(round_trips),
        "order_round_trip_ms_p50": round(statistics.median(ordered), 2),
        "order_round_trip_ms_p99": round(_percentile(ordered, 0.99), 2),
        "order_round_trip_ms_max": round(ordered[-1], 2),
        "order_round_trip_ms_mean": round(statistics.fmean(ordered), 2),
    }


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


# --- driver -----------------------------------------------------------------------


async def measure(
    server: SimulatorServer, options: int, seconds: float, speed: float, orders: int
) -> dict[str, Any]:
    session = sdk_session(server)
    await session.refresh()
    result = await quote_throughput(server, session, options, seconds, speed)
    result |= await order_round_trips(server, session, orders)
    return result


def run(options: int, seconds: float, speed: float, orders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="senex-bench-sim-") as tmp:
        server = SimulatorServer(Path(tmp), start=SIM_START, seed=7)
        server.start()
        try:
            result = asyncio.run(measure(server, options, seconds, speed, orders))
        finally:
            server.stop()
    return {
        **result,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count() or 0},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="quote counting window")
    parser.add_argument("--options", type=int, default=200, help="option symbols subscribed")
    parser.add_argument("--speed", type=float, default=1000.0, help="simulated clock speed")
    parser.add_argument("--orders", type=int, default=200, help="order round trips")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.seconds <= 0:
        parser.error("--orders must be >= 1 and --seconds > 0")
    result = run(args.options, args.seconds, args.speed, args.orders)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:34} {value}")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
