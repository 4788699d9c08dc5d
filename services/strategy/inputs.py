"""From market data's replies and the account projection to the core, and back (pure).

`decision_snapshot` builds the very JSON ``senex suggest --snapshot`` reads (Decimals as
strings), so a live decision can be saved and re-run offline; `suggestion_of` maps the
core's `Proposal` onto the ``Suggestion`` contract with the quotes it was priced from.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from libs.contracts.commands import ChainSnapshotReply, MarketConditionReply
from libs.contracts.errors import MarketDataStaleError
from libs.contracts.market import Quote
from libs.contracts.strategy import (
    SUGGESTION_TTL,
    SpreadKind,
    SpreadLeg,
    SuggestedSpread,
    Suggestion,
)
from libs.contracts.symbols import OccSymbol, OptionType
from services.strategy.accounts import AccountState
from services.strategy.core import Decision, Proposal
from services.strategy.core.pricing import PricedLeg
from services.strategy.core.snapshot import CLOSES_IN_WINDOW


def _quote_json(quote: Quote | None) -> dict[str, str] | None:
    return None if quote is None else {"bid": str(quote.bid), "ask": str(quote.ask)}


def decision_snapshot(
    now: datetime,
    condition: MarketConditionReply,
    chain: ChainSnapshotReply,
    account: AccountState,
) -> dict[str, Any]:
    """The snapshot a generation decides from, in the ``senex suggest`` input format.

    Raises `MarketDataStaleError` when market data lacks the 19 daily closes the bands
    need. A negative buying power (a margin call) counts as zero.
    """
    if len(condition.daily_closes) < CLOSES_IN_WINDOW:
        raise MarketDataStaleError(
            f"market data has {len(condition.daily_closes)} daily closes of "
            f"{condition.underlying}, the bands need {CLOSES_IN_WINDOW}",
            details={"underlying": condition.underlying},
        )
    if account.balance is None:  # checked by the caller first; a bug otherwise
        raise ValueError(f"no balance known for account {account.account_id}")
    buying_power = max(account.balance.derivative_buying_power, Decimal(0))
    return {
        "as_of": now.isoformat(),
        "underlying": condition.underlying.value,
        "price": str(condition.quote.mid),
        "daily_closes": [str(c) for c in condition.daily_closes[-CLOSES_IN_WINDOW:]],
        "chain": [
            {
                "expiration": e.expiration.isoformat(),
                "strikes": [
                    {
                        "strike": str(row.strike),
                        "put": _quote_json(row.put),
                        "call": _quote_json(row.call),
                    }
                    for row in e.strikes
                ],
            }
            for e in chain.expirations
        ],
        "account": {
            "buying_power": str(buying_power),
            "positions": [
                {
                    "underlying": p.underlying,
                    "expiration": p.expiration.isoformat(),
                    "max_risk": str(p.max_risk),
                    "spreads": [
                        {
                            "type": s.type,
                            "short": str(s.short_strike),
                            "long": str(s.long_strike),
                            "quantity": s.quantity,
                        }
                        for s in p.spreads.values()
                    ],
                }
                for p in account.managed_positions
            ],
        },
        "settings": {"risk_template": account.settings.risk_template.value.lower()},
        "risk_free_rate": str(condition.risk_free_rate),
    }


def chain_quotes(chain: ChainSnapshotReply) -> dict[str, Quote]:
    """Every option quote of the chain reply, by the OCC symbol the core names its leg.

    Keyed by the row's own expiration and strike (as the core builds leg symbols), so
    the lookup does not depend on how market data spelt the symbol.
    """
    quotes: dict[str, Quote] = {}
    for expiration in chain.expirations:
        for row in expiration.strikes:
            for option_type, quote in ((OptionType.PUT, row.put), (OptionType.CALL, row.call)):
                if quote is not None:
                    symbol = OccSymbol.build(
                        chain.underlying.value, expiration.expiration, option_type, row.strike
                    )
                    quotes[str(symbol)] = quote
    return quotes


def _leg(leg: PricedLeg) -> SpreadLeg:
    return SpreadLeg(symbol=leg.symbol, bid=leg.bid, ask=leg.ask, mid=leg.mid)


def _spread(kind: SpreadKind, short: PricedLeg, long: PricedLeg) -> SuggestedSpread:
    return SuggestedSpread(
        kind=kind,
        short_leg=_leg(short),
        long_leg=_leg(long),
        natural_credit=short.bid - long.ask,
        mid_credit=short.mid - long.mid,
    )


def band_reason(decision: Decision) -> str | None:
    """The trail line saying why the call spread was left out."""
    return next((line for line in decision.trail if "call spread omitted" in line), None)


def suggestion_of(
    decision: Decision,
    *,
    suggestion_id: UUID,
    now: datetime,
    condition: MarketConditionReply,
    quotes: dict[str, Quote],
) -> Suggestion:
    """The contract of the core's proposal, created ``now``, expiring 24 h later."""
    p: Proposal | None = decision.proposal
    if p is None:
        raise ValueError("no proposal to map")
    put_short, put_long = p.legs[0], p.legs[1]
    spreads = [
        _spread(SpreadKind.PUT_SPREAD_1, put_short, put_long),
        _spread(SpreadKind.PUT_SPREAD_2, put_short, put_long),
    ]
    if len(p.legs) == 4:
        spreads.append(_spread(SpreadKind.CALL_SPREAD, p.legs[2], p.legs[3]))
    leg_quotes = [quotes[str(leg.symbol)] for leg in p.legs]
    return Suggestion(
        suggestion_id=suggestion_id,
        created_at=now,
        expires_at=now + SUGGESTION_TTL,
        underlying=p.underlying,
        underlying_price=condition.quote.mid,
        expiration=p.expiration,
        dte=p.dte,
        base_strike=p.base_strike,
        short_strike=p.short_strike,
        width=p.width,
        tradeable_capital=p.tradeable_capital,
        spreads=tuple(spreads),
        near_bollinger_band=p.near_bollinger_band,
        band_reason=band_reason(decision) if p.near_bollinger_band else None,
        bands=p.bands,
        stressed=p.stressed,
        total_natural_credit=sum((s.natural_credit for s in spreads), Decimal(0)),
        total_mid_credit=sum((s.mid_credit for s in spreads), Decimal(0)),
        max_profit=p.max_profit,
        max_risk=p.max_risk,
        required_capital=p.required_capital,
        iv_rank=condition.iv_rank,
        position_greeks=p.greeks,
        quotes=(condition.quote, *leg_quotes),
    )


def skip_message(underlying: str, decision: Decision) -> str:
    """One sentence naming what was missing or conflicting."""
    code = decision.reason_code.value if decision.reason_code is not None else "NO_TRADE"
    if code == "STRIKE_NOT_FOUND":
        found = [line for line in decision.trail if " skipped: " in line]
        what = "; ".join(found) if found else decision.trail[-1]
    elif code == "CONFLICTING_POSITION":
        what = "; ".join(line for line in decision.trail if line.startswith("proposed "))
    else:
        what = decision.trail[-1]
    return f"No {underlying} trade ({code}): {what}."
