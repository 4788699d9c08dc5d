"""JSON builders with the dashed keys and types the SDK's models expect."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.simulator import chains, clock, market
from services.simulator.broker import AccountView, Broker, iso, money
from services.simulator.store import AccountRow, PositionRow

ZERO = "0.00"


def account(row: AccountRow) -> dict[str, Any]:
    """An ``Account``."""
    return {
        "account-number": row.number,
        "opened-at": iso(row.opened_at),
        "nickname": row.nickname,
        "account-type-name": "Individual",
        "is-closed": False,
        "day-trader-status": False,
        "is-firm-error": False,
        "is-firm-proprietary": False,
        "is-futures-approved": False,
        "is-test-drive": False,
        "margin-or-cash": "Margin",
        "is-foreign": False,
        "created-at": iso(row.opened_at),
        "suitable-options-level": "No Restrictions",
    }


_ZERO_BALANCE_KEYS = (
    "long-equity-value",
    "short-equity-value",
    "long-futures-value",
    "short-futures-value",
    "long-futures-derivative-value",
    "short-futures-derivative-value",
    "short-margineable-value",
    "futures-margin-requirement",
    "maintenance-call-value",
    "reg-t-call-value",
    "day-trading-call-value",
    "day-equity-call-value",
    "pending-cash",
    "long-cryptocurrency-value",
    "short-cryptocurrency-value",
    "cryptocurrency-margin-requirement",
    "unsettled-cryptocurrency-fiat-amount",
    "equity-offering-margin-requirement",
    "long-bond-value",
    "bond-margin-requirement",
    "futures-overnight-margin-requirement",
    "futures-intraday-margin-requirement",
    "pending-margin-interest",
    "effective-cryptocurrency-buying-power",
)


def balance(number: str, view: AccountView, at: datetime) -> dict[str, Any]:
    """An ``AccountBalance`` (USD)."""
    bp = money(view.buying_power)
    data: dict[str, Any] = dict.fromkeys(_ZERO_BALANCE_KEYS, ZERO)
    data |= {
        "account-number": number,
        "currency": "USD",
        "cash-balance": money(view.cash),
        "long-derivative-value": money(view.long_value),
        "short-derivative-value": money(view.short_value),
        "long-margineable-value": ZERO,
        "margin-equity": money(view.net_liq),
        "equity-buying-power": bp,
        "derivative-buying-power": bp,
        "day-trading-buying-power": bp,
        "available-trading-funds": bp,
        "maintenance-requirement": money(view.requirement),
        "reg-t-margin-requirement": money(view.requirement),
        "net-liquidating-value": money(view.net_liq),
        "cash-available-to-withdraw": money(max(view.buying_power, Decimal(0))),
        "day-trade-excess": bp,
        "closed-loop-available-balance": money(view.cash),
        "used-derivative-buying-power": money(view.requirement),
        "maintenance-excess": bp,
        "pending-cash-effect": "None",
        "snapshot-date": clock.ny_date(at).isoformat(),
        "updated-at": iso(at),
        "time-of-day": "EOD" if not clock.is_market_open(at) else "BOD",
    }
    return data


def position(row: PositionRow, broker: Broker) -> dict[str, Any]:
    """A ``CurrentPosition``."""
    option = chains.parse_occ(row.symbol)
    data: dict[str, Any] = {
        "account-number": row.account,
        "symbol": row.symbol,
        "instrument-type": "Equity Option",
        "underlying-symbol": option.root if option else row.symbol,
        "quantity": abs(row.quantity),
        "quantity-direction": "Long" if row.quantity > 0 else "Short",
        "average-open-price": money(row.average_open_price),
        "multiplier": 100,
        "cost-effect": "Debit" if row.quantity > 0 else "Credit",
        "is-suppressed": False,
        "is-frozen": False,
        "realized-day-gain": ZERO,
        "realized-day-gain-effect": "None",
        "realized-today": ZERO,
        "realized-today-effect": "None",
        "created-at": iso(row.created_at),
        "updated-at": iso(row.updated_at),
        "close-price": ZERO,
    }
    if option is not None:
        quote = broker.option_quote(option)
        mark = quote.mid.quantize(market.TICK)
        data |= {
            "close-price": money(mark),
            "mark": money(mark * 100 * abs(row.quantity)),
            "mark-price": money(mark),
            "expires-at": iso(market.expiry_instant(option.expiration)),
        }
    return data


def equity(symbol: str) -> dict[str, Any]:
    """An ``Equity``."""
    spec = market.UNDERLYINGS[symbol]
    return {
        "id": 1000 + sorted(market.UNDERLYINGS).index(symbol),
        "symbol": symbol,
        "instrument-type": "Equity",
        "is-index": False,
        "description": spec.description,
        "short-description": spec.description,
        "lendability": "Easy To Borrow",
        "market-time-instrument-collection": "Equity",
        "is-closing-only": False,
        "is-options-closing-only": False,
        "active": True,
        "is-illiquid": False,
        "is-etf": True,
        "streamer-symbol": symbol,
        "listed-market": "ARCX",
        "tick-sizes": [{"value": "0.01"}],
        "option-tick-sizes": [{"value": "0.01"}],
    }


def option(opt: chains.OptionSymbol, kind: str, at: datetime) -> dict[str, Any]:
    """An ``Option``."""
    expiry = market.expiry_instant(opt.expiration)
    return {
        "symbol": opt.occ,
        "instrument-type": "Equity Option",
        "active": True,
        "strike-price": str(opt.strike),
        "root-symbol": opt.root,
        "underlying-symbol": opt.root,
        "expiration-date": opt.expiration.isoformat(),
        "exercise-style": "American",
        "shares-per-contract": 100,
        "option-type": "C" if opt.is_call else "P",
        "option-chain-type": "Standard",
        "expiration-type": kind,
        "settlement-type": "PM",
        "stops-trading-at": iso(expiry),
        "expires-at": iso(expiry),
        "market-time-instrument-collection": "Equity Option",
        "days-to-expiration": chains.days_to_expiration(opt.expiration, at),
        "is-closing-only": False,
        "streamer-symbol": opt.streamer,
    }


def nested_chain(seed: int, symbol: str, at: datetime) -> dict[str, Any]:
    """One ``NestedOptionChain``."""
    strikes = chains.strike_grid(chains.reference_price(seed, symbol, at))
    expirations = []
    for exp in chains.expirations(at):
        rows = []
        for strike in strikes:
            call = chains.OptionSymbol(symbol, exp.day, True, strike)
            put = chains.OptionSymbol(symbol, exp.day, False, strike)
            rows.append(
                {
                    "strike-price": str(strike),
                    "call": call.occ,
                    "call-streamer-symbol": call.streamer,
                    "put": put.occ,
                    "put-streamer-symbol": put.streamer,
                }
            )
        expirations.append(
            {
                "expiration-type": exp.kind,
                "expiration-date": exp.day.isoformat(),
                "days-to-expiration": chains.days_to_expiration(exp.day, at),
                "settlement-type": "PM",
                "strikes": rows,
            }
        )
    return {
        "underlying-symbol": symbol,
        "root-symbol": symbol,
        "option-chain-type": "Standard",
        "shares-per-contract": 100,
        "tick-sizes": [{"value": "0.01"}],
        "deliverables": [],
        "expirations": expirations,
    }


def flat_chain(seed: int, symbol: str, at: datetime) -> list[dict[str, Any]]:
    """Every listed ``Option`` of the underlying."""
    strikes = chains.strike_grid(chains.reference_price(seed, symbol, at))
    return [
        option(chains.OptionSymbol(symbol, exp.day, is_call, strike), exp.kind, at)
        for exp in chains.expirations(at)
        for strike in strikes
        for is_call in (True, False)
    ]


def metrics(broker: Broker, symbol: str, at: datetime) -> dict[str, Any]:
    """A ``MarketMetricInfo`` with IV index, rank and percentile."""
    seed = broker.settings.seed
    day = clock.ny_date(at)
    spec = market.UNDERLYINGS[symbol]
    iv = market.atm_iv(seed, symbol, day)
    rank, percentile = market.iv_rank_and_percentile(seed, symbol, day)
    closes = [c for _, c in market.daily_history(seed, symbol, at, 91)]
    spot = float(broker.spot(symbol, at))
    iv_week_ago = market.atm_iv(seed, symbol, day - timedelta(days=5))
    iv_week_ago = market.atm_iv(seed, symbol, day - timedelta(days=5))
    expirations = [
        {
            "expiration-date": exp.day.isoformat(),
            "settlement-type": "PM",
            "option-chain-type": "Standard",
            "implied-volatility": f"{_term_iv(iv, spot, exp.day, at):.4f}",
        }
        for exp in chains.expirations(at)
    ]
    return {
        "symbol": symbol,
        "implied-volatility-index": f"{iv:.4f}",
        "implied-volatility-index-5-day-change": f"{iv - iv_week_ago:.4f}",
        "implied-volatility-index-rank": f"{rank:.4f}",
        "tw-implied-volatility-index-rank": f"{rank:.4f}",
        "tos-implied-volatility-index-rank": f"{rank:.4f}",
        "implied-volatility-index-rank-source": "tw",
        "implied-volatility-percentile": f"{percentile:.4f}",
        "implied-volatility-30-day": f"{iv * 100:.2f}",
        "historical-volatility-30-day": f"{market.historical_vol(closes, 30) * 100:.2f}",
        "historical-volatility-60-day": f"{market.historical_vol(closes, 60) * 100:.2f}",
        "historical-volatility-90-day": f"{market.historical_vol(closes, 90) * 100:.2f}",
        "liquidity-rating": 4,
        "beta": str(spec.beta),
        "market-cap": str(spec.market_cap),
        "updated-at": iso(at),
        "option-expiration-implied-volatilities": expirations,
    }


def _term_iv(atm: float, spot: float, expiration: date, at: datetime) -> float:
    return market.implied_vol(atm, spot, spot, market.years_to_expiry(expiration, at))


def market_data(broker: Broker, symbol: str, at: datetime) -> dict[str, Any]:
    """A ``MarketData`` for an underlying or an option."""
    opt = chains.parse_occ(symbol)
    if opt is not None:
        quote = broker.option_quote(opt, at)
        bid, ask, last = quote.bid, quote.ask, quote.theo.quantize(market.TICK)
        kind = "Equity Option"
    else:
        last = broker.spot(symbol, at)
        bid, ask = market.underlying_quote(last)
        kind = "Equity"
    prev_day = clock.last_completed_session(at)
    prev_close = (
        market.model_close(broker.settings.seed, opt.root if opt else symbol, prev_day)
        if opt is None
        else last
    )
    return {
        "symbol": symbol,
        "instrument-type": kind,
        "updated-at": iso(at),
        "bid": money(bid),
        "ask": money(ask),
        "mid": money((bid + ask) / 2),
        "mark": money((bid + ask) / 2),
        "last": money(last),
        "bid-size": "10",
        "ask-size": "10",
        "close-price-type": "Regular",
        "summary-date": clock.ny_date(at).isoformat(),
        "prev-close-date": prev_day.isoformat(),
        "prev-close": money(prev_close),
        "prev-close-price-type": "Final",
        "halt-start-time": -1,
        "halt-end-time": -1,
    }
