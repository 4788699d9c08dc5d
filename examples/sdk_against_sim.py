"""The public tastytrade SDK, unmodified, against the Senex broker simulator.

    python examples/sdk_against_sim.py [--url http://127.0.0.1:8765]
        [--client-secret senex-paper-secret] [--refresh-token senex-paper-refresh]

Uses no Senex code at all: only the SDK and the request hook that sends its traffic
(REST and both websockets) to the simulator instead of TastyTrade. Start the simulator
first (``senex sim``). Walks through accounts, balances, positions, the option chain,
market metrics, a dry run, a marketable order that fills and shows on the account
streamer, a resting order that is replaced and cancelled, and DXLink quotes, greeks
and daily candles. Prints each step; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from tastytrade import Account, AlertStreamer, DXLinkStreamer, Session
from tastytrade.dxfeed import Candle, Greeks, Quote
from tastytrade.instruments import NestedOptionChain
from tastytrade.metrics import get_market_metrics
from tastytrade.order import (
    InstrumentType,
    Leg,
    LimitOrder,
    OrderAction,
    OrderStatus,
    OrderTimeInForce,
    PlacedOrder,
)

WAIT_S = 15.0


def redirect_to(url: str) -> Callable[[Any], Awaitable[None]]:
    """A request hook rewriting every SDK request to the simulator at ``url``."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port

    async def hook(request: Any) -> None:
        scheme = {"https": "http", "wss": "ws"}.get(request.url.scheme, request.url.scheme)
        request.url = request.url.copy_with(scheme=scheme, host=host, port=port)

    return hook


def say(step: str, detail: object = "") -> None:
    print(f"{step:<28} {detail}", flush=True)


def spread(short: str, long: str, price: Decimal, tif: OrderTimeInForce) -> LimitOrder:
    """A one-lot put credit spread (positive price = credit, the SDK's convention)."""
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
    return LimitOrder(time_in_force=tif, legs=legs, price=price)


async def run(url: str, secret: str, refresh: str) -> None:
    session = Session(secret, refresh, event_hooks={"request": [redirect_to(url)]}, trust_env=False)
    accounts = await Account.get(session)
    account = accounts[0]
    say("accounts", [a.account_number for a in accounts])
    balances = await account.get_balances(session)
    say(
        "balances",
        f"cash {balances.cash_balance}, option buying power {balances.derivative_buying_power}",
    )
    say("positions", len(await account.get_positions(session)))

    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    expiry = min(chain.expirations, key=lambda e: abs(e.days_to_expiration - 45))
    strikes = sorted(expiry.strikes, key=lambda s: s.strike_price)
    metrics = (await get_market_metrics(session, ["SPY"]))[0]
    say(
        "option chain",
        f"{len(chain.expirations)} expirations; "
        f"{expiry.expiration_date} has {len(strikes)} strikes",
    )
    say("market metrics", f"IV rank {metrics.implied_volatility_index_rank}")

    async with DXLinkStreamer(session) as feed:
        await feed.subscribe(Quote, ["SPY"])
        spy = await asyncio.wait_for(feed.get_event(Quote), WAIT_S)
        price = (spy.bid_price + spy.ask_price) / 2
        say("DXLink quote", f"SPY {spy.bid_price} x {spy.ask_price}")
        at_money = min(strikes, key=lambda s: abs(s.strike_price - price))
        below = next(s for s in strikes if s.strike_price == at_money.strike_price - 3)
        await feed.subscribe(Quote, [at_money.put_streamer_symbol, below.put_streamer_symbol])
        legs: dict[str, Quote] = {}
        while len(legs) < 2:
            quote = await asyncio.wait_for(feed.get_event(Quote), WAIT_S)
            if quote.event_symbol != "SPY":
                legs[quote.event_symbol] = quote
        short_q, long_q = legs[at_money.put_streamer_symbol], legs[below.put_streamer_symbol]
        natural = short_q.bid_price - long_q.ask_price
        say("spread natural credit", natural)
        await feed.subscribe(Greeks, [at_money.put_streamer_symbol])
        greeks = await asyncio.wait_for(feed.get_event(Greeks), WAIT_S)
        say("DXLink greeks", f"delta {greeks.delta}, theta {greeks.theta}, iv {greeks.volatility}")
        # The simulator's clock is its own, so ask for the whole history it has.
        await feed.subscribe_candle(["SPY"], "1d", datetime(2000, 1, 1, tzinfo=UTC))
        candles: list[Candle] = []
        while len(candles) < 250:
            candles.append(await asyncio.wait_for(feed.get_event(Candle), WAIT_S))
        say("DXLink daily candles", f"{len(candles)} received")

    short, long = at_money.put, below.put
    dry = await account.place_order(
        session, spread(short, long, natural, OrderTimeInForce.DAY), dry_run=True
    )
    say("dry run", f"buying power effect {dry.buying_power_effect.change_in_buying_power}")

    async with AlertStreamer(session) as alerts:
        await alerts.subscribe_accounts([account])
        notifications = alerts.listen(PlacedOrder)
        placed = await account.place_order(
            session, spread(short, long, natural, OrderTimeInForce.DAY), dry_run=False
        )
        while True:
            order = await asyncio.wait_for(anext(notifications), WAIT_S)
            if order.id == placed.order.id and order.status == OrderStatus.FILLED:
                break
        fills = {leg.symbol: leg.fills[0].fill_price for leg in order.legs if leg.fills}
        say("filled (account streamer)", f"order {order.id}, leg fills {fills}")

    resting = await account.place_order(
        session,
        spread(short, long, natural + Decimal("1.00"), OrderTimeInForce.GTC),
        dry_run=False,
    )
    if resting.order.status != OrderStatus.LIVE:
        raise RuntimeError(f"a credit 1.00 above natural should rest, got {resting.order.status}")
    replaced = await account.replace_order(
        session,
        resting.order.id,
        LimitOrder(time_in_force=OrderTimeInForce.GTC, legs=[], price=natural + Decimal("1.50")),
    )
    say("replaced", f"order {resting.order.id} -> {replaced.id} at {replaced.price}")
    await account.delete_order(session, replaced.id)
    cancelled = await account.get_order(session, replaced.id)
    if cancelled.status != OrderStatus.CANCELLED:
        raise RuntimeError(f"cancel did not take: {cancelled.status}")
    say("cancelled", f"order {replaced.id}")
    say("positions", len(await account.get_positions(session)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8765")
    parser.add_argument("--client-secret", default="senex-paper-secret")
    parser.add_argument("--refresh-token", default="senex-paper-refresh")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.url, args.client_secret, args.refresh_token))
    except Exception as exc:
        causes = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
        for cause in causes:
            print(f"FAILED: {type(cause).__name__}: {cause!r}", file=sys.stderr)
        return 1
    print("all steps passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
