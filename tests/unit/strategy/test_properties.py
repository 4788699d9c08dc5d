"""Properties: a suggestion only uses listed, two-sided strikes, the tier's width, no conflict."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.contracts.strategy import SkipReason
from libs.indicators.bands import bollinger
from services.strategy.core import Snapshot, decide
from services.strategy.core.strikes import base_strike, spread_width
from tests.unit.strategy.builders import AS_OF, TODAY

D = Decimal

prices = st.decimals(min_value=D("570"), max_value=D("612"), places=2)
quotes = st.one_of(
    st.none(),
    st.tuples(
        st.decimals(min_value=D(0), max_value=D(30), places=2),
        st.decimals(min_value=D(0), max_value=D(30), places=2),
    ).map(lambda ba: {"bid": str(min(ba)), "ask": str(max(ba))}),
)
strike_rows = st.dictionaries(
    st.integers(min_value=560, max_value=625).map(D),
    st.tuples(quotes, quotes),
    min_size=0,
    max_size=40,
)
spreads = st.tuples(
    st.sampled_from(["put", "call"]),
    st.integers(min_value=575, max_value=610),
    st.integers(min_value=575, max_value=610),
)


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    price = draw(prices)
    closes = draw(st.lists(prices, min_size=19, max_size=19))
    expirations = draw(
        st.lists(st.integers(min_value=25, max_value=55), min_size=1, max_size=4, unique=True)
    )
    chain = []
    for days in expirations:
        table = draw(strike_rows)
        chain.append(
            {
                "expiration": (TODAY + timedelta(days=days)).isoformat(),
                "strikes": [
                    {"strike": str(k), "put": put, "call": call}
                    for k, (put, call) in sorted(table.items())
                ],
            }
        )
    positions = [
        {
            "underlying": draw(st.sampled_from(["QQQ", "SPY"])),
            "expiration": (TODAY + timedelta(days=draw(st.sampled_from(expirations)))).isoformat(),
            "max_risk": str(draw(st.integers(min_value=0, max_value=30_000))),
            "spreads": [
                {"type": t, "short": str(s), "long": str(lg), "quantity": 1}
                for t, s, lg in draw(st.lists(spreads, max_size=3))
            ],
        }
        for _ in range(draw(st.integers(min_value=0, max_value=3)))
    ]
    return {
        "as_of": AS_OF,
        "underlying": "QQQ",
        "price": str(price),
        "daily_closes": [str(c) for c in closes],
        "chain": chain,
        "account": {
            "buying_power": str(draw(st.integers(min_value=0, max_value=100_000))),
            "positions": positions,
        },
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_suggestions_use_listed_strikes_the_tiers_width_and_never_conflict(
    data: dict[str, Any],
) -> None:
    snap = Snapshot.model_validate(data)
    decision = decide(snap)
    p = decision.proposal
    if p is None:
        assert decision.reason_code in set(SkipReason)
        return
    assert decision.reason_code is None
    chain = next(c for c in snap.chain if c.expiration == p.expiration)
    assert 30 <= p.dte <= 50
    # Every leg's strike is listed and its quote two-sided.
    for leg in p.legs:
        row = chain.row(leg.symbol.strike)
        assert row is not None
        quote = row.call if leg.symbol.option_type.value == "CALL" else row.put
        assert quote is not None
        assert quote.two_sided
        assert (leg.bid, leg.ask) == (quote.bid, quote.ask)
    # The tier's width, and K' is the smallest listed strike at or above K.
    assert p.width == spread_width(snap.account.tradeable_capital)
    k = base_strike(snap.price)
    assert p.short_strike == min(r.strike for r in chain.strikes if r.strike >= k)
    assert p.put_long_strike == p.short_strike - p.width
    bands = bollinger(snap.daily_closes, snap.price)
    near = snap.price >= bands.upper or snap.price <= bands.lower
    assert p.near_bollinger_band is near
    if near:
        assert p.call_long_strike is None
        assert p.call_spread_quantity == 0
    else:
        assert p.call_long_strike == p.short_strike + p.width
        assert p.call_spread_quantity == 1
    # No conflict with any open spread of the same underlying, expiration and type.
    proposed = {("put", p.short_strike, p.put_long_strike)}
    if p.call_long_strike is not None:
        proposed.add(("call", p.short_strike, p.call_long_strike))
    for position in snap.account.positions:
        if position.underlying != snap.underlying or position.expiration != p.expiration:
            continue
        for spread in position.spreads:
            for kind, short, long in proposed:
                if spread.type == kind:
                    assert short != spread.long
                    assert long != spread.short
    # Risk arithmetic.
    assert p.total_credit.mid == 2 * p.put_spread_credit.mid + p.call_spread_credit.mid
    assert p.max_risk == p.required_capital - p.total_credit.mid * 100
    assert p.required_capital == 2 * p.width * 100


@given(prices)
def test_base_strike_is_even_and_within_one_of_price(price: Decimal) -> None:
    k = base_strike(price)
    assert k % 2 == 0
    assert abs(k - price) <= 1
