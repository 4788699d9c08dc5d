"""DOMAIN.md 1-3, rule by rule: strike selection, widths, expirations, bands, overlap."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from libs.contracts.market import BandPosition, BollingerBands
from libs.contracts.strategy import SkipReason
from libs.indicators.bands import band_position, bollinger, price_at_or_below_lower_band
from services.strategy.core import POSITION_LIMIT, Snapshot, decide
from services.strategy.core.strikes import (
    base_strike,
    candidate_expirations,
    days_to_expiration,
    new_york_date,
    spread_width,
)
from tests.unit.strategy.builders import (
    FEB_20,
    TODAY,
    build,
    chain_rows,
    position,
    snapshot_dict,
)

D = Decimal
PRICE = D("591.00")


def by_dte(days: int) -> date:
    return TODAY + timedelta(days=days)


def rows(strikes: Any = range(580, 606), expiration: date = FEB_20, **kw: Any) -> Any:
    return chain_rows(strikes, PRICE, expiration, **kw)


# Rule 2.1: K = 2 x round(price / 2), ties to even.


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("591", "592"),
        ("593", "592"),
        ("595", "596"),
        ("590.9", "590"),
        ("591.01", "592"),
        ("589", "588"),
        ("597", "596"),
        ("592", "592"),
        ("590.99", "590"),
    ],
)
def test_base_strike_rounds_half_to_even(price: str, expected: str) -> None:
    assert base_strike(D(price)) == D(expected)


def test_base_strike_matches_pythons_round_on_exact_halves() -> None:
    for whole in range(560, 640):
        assert base_strike(D(whole)) == 2 * round(whole / 2)


# Rule 2.4: width tiers, at their edges.


@pytest.mark.parametrize(
    ("capital", "width"),
    [
        ("0", 3),
        ("24999.99", 3),
        ("25000", 5),
        ("49999.99", 5),
        ("50000", 7),
        ("74999.99", 7),
        ("75000", 9),
        ("1000000", 9),
    ],
)
def test_width_tier_edges(capital: str, width: int) -> None:
    assert spread_width(D(capital)) == width


def test_tradeable_capital_adds_open_positions_max_risk() -> None:
    snap = build(buying_power="24500", positions=[position(date(2026, 3, 20), max_risk="500")])
    decision = decide(snap)
    assert decision.proposal is not None
    assert decision.proposal.tradeable_capital == D(25000)
    assert decision.proposal.width == 5


# Rule 2.2: expirations 30..50 DTE, nearest 45, ties to the later date; DTE in New York.


def test_dte_counts_from_the_new_york_date() -> None:
    late_evening_ny = datetime.fromisoformat("2026-01-06T03:00:00+00:00")  # 22:00 on the 5th
    assert new_york_date(late_evening_ny) == date(2026, 1, 5)
    assert days_to_expiration(new_york_date(late_evening_ny), FEB_20) == 46


def test_window_includes_30_and_50_and_excludes_29_and_51() -> None:
    exps = [by_dte(d) for d in (29, 30, 50, 51)]
    assert set(candidate_expirations(exps, TODAY)) == {by_dte(30), by_dte(50)}


def test_candidates_order_by_distance_to_45_ties_to_later() -> None:
    exps = [by_dte(d) for d in (30, 43, 47, 45, 50, 40)]
    assert candidate_expirations(exps, TODAY) == [
        by_dte(45),
        by_dte(47),
        by_dte(43),
        by_dte(50),
        by_dte(40),
        by_dte(30),
    ]


def test_dte_tie_picks_the_later_expiration() -> None:
    snap = build(
        chain={by_dte(43): rows(expiration=by_dte(43)), by_dte(47): rows(expiration=by_dte(47))}
    )
    decision = decide(snap)
    assert decision.proposal is not None
    assert decision.proposal.expiration == by_dte(47)
    assert decision.proposal.dte == 47


def test_no_expiration_in_window_is_no_trade() -> None:
    snap = build(
        chain={by_dte(29): rows(expiration=by_dte(29)), by_dte(51): rows(expiration=by_dte(51))}
    )
    decision = decide(snap)
    assert decision.proposal is None
    assert decision.reason_code is SkipReason.NO_EXPIRATION


# Rule 2.3: K', the legs, two-sided quotes, fallback to the next candidate.


def test_worked_example_strikes_and_symbols() -> None:
    decision = decide(build())
    p = decision.proposal
    assert p is not None
    assert (p.base_strike, p.short_strike, p.put_long_strike, p.call_long_strike) == (
        D(592),
        D(592),
        D(589),
        D(595),
    )
    assert [(str(leg.symbol), leg.action.value, leg.quantity) for leg in p.legs] == [
        ("QQQ   260220P00592000", "SELL_TO_OPEN", 2),
        ("QQQ   260220P00589000", "BUY_TO_OPEN", 2),
        ("QQQ   260220C00592000", "SELL_TO_OPEN", 1),
        ("QQQ   260220C00595000", "BUY_TO_OPEN", 1),
    ]
    assert (p.put_spread_quantity, p.call_spread_quantity) == (2, 1)


def test_unlisted_base_strike_falls_back_to_the_next_listed_above() -> None:
    strikes = [s for s in range(580, 606) if s != 592]
    p = decide(build(chain={FEB_20: rows(strikes)})).proposal
    assert p is not None
    assert (p.short_strike, p.put_long_strike, p.call_long_strike) == (D(593), D(590), D(596))


def test_missing_long_put_is_strike_not_found() -> None:
    strikes = [s for s in range(580, 606) if s != 589]
    decision = decide(build(chain={FEB_20: rows(strikes)}))
    assert decision.reason_code is SkipReason.STRIKE_NOT_FOUND
    assert "589 not listed" in decision.reason


def test_missing_long_leg_moves_to_the_next_candidate() -> None:
    near = [s for s in range(580, 606) if s != 589]
    snap = build(
        chain={by_dte(45): rows(near, by_dte(45)), by_dte(40): rows(expiration=by_dte(40))}
    )
    p = decide(snap).proposal
    assert p is not None
    assert p.expiration == by_dte(40)


def test_missing_long_call_fails_when_calls_are_included() -> None:
    snap = build(chain={FEB_20: rows(missing={"call": {"595"}})})
    assert decide(snap).reason_code is SkipReason.STRIKE_NOT_FOUND


def test_one_sided_quote_does_not_work() -> None:
    data = snapshot_dict()
    for row in data["chain"][0]["strikes"]:
        if row["strike"] == "589":
            row["put"] = {"bid": "0", "ask": "4.10"}
    decision = decide(Snapshot.model_validate(data))
    assert decision.reason_code is SkipReason.STRIKE_NOT_FOUND
    assert "589 put not two-sided" in decision.reason


def test_no_strike_at_or_above_base_is_strike_not_found() -> None:
    decision = decide(build(chain={FEB_20: rows(range(570, 592))}))
    assert decision.reason_code is SkipReason.STRIKE_NOT_FOUND


# Rule 1 and 3: Bollinger bands, call spread omission, stressed.


def test_bollinger_uses_19_closes_plus_price_and_sample_std() -> None:
    closes = [D(x) for x in range(580, 599)]
    bands = bollinger(closes, PRICE)
    window = [*closes, PRICE]
    mean = statistics.mean(window)
    sd = statistics.stdev(window)
    assert bands.period == 20
    assert bands.middle == mean
    assert abs(bands.upper - (mean + 2 * sd)) < D("1e-20")
    assert abs(bands.lower - (mean - 2 * sd)) < D("1e-20")


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("110", BandPosition.AT_OR_ABOVE_UPPER),
        ("111", BandPosition.AT_OR_ABOVE_UPPER),
        ("109.99", BandPosition.INSIDE),
        ("90.01", BandPosition.INSIDE),
        ("90", BandPosition.AT_OR_BELOW_LOWER),
        ("89", BandPosition.AT_OR_BELOW_LOWER),
    ],
)
def test_touching_a_band_counts_as_at_it(price: str, expected: BandPosition) -> None:
    bands = BollingerBands(lower=D(90), middle=D(100), upper=D(110))
    assert band_position(D(price), bands) is expected
    assert price_at_or_below_lower_band(D(price), bands) is (
        expected is BandPosition.AT_OR_BELOW_LOWER
    )


def test_price_above_upper_band_omits_the_call_spread() -> None:
    snap = build(closes=["570"] * 19, chain={FEB_20: rows(missing={"call": {"595"}})})
    p = decide(snap).proposal
    assert p is not None
    assert p.near_bollinger_band
    assert not p.stressed
    assert p.call_spread_quantity == 0
    assert p.call_long_strike is None
    assert len(p.legs) == 2
    assert p.call_spread_credit.natural == 0 == p.call_spread_credit.mid
    assert p.total_credit.mid == 2 * p.put_spread_credit.mid


def test_price_at_or_below_lower_band_is_stressed_and_omits_calls() -> None:
    p = decide(build(closes=["610"] * 19)).proposal
    assert p is not None
    assert p.stressed
    assert p.near_bollinger_band
    assert p.call_spread_quantity == 0


def test_inside_the_bands_keeps_calls_and_is_not_stressed() -> None:
    p = decide(build()).proposal
    assert p is not None
    assert not p.near_bollinger_band
    assert not p.stressed
    assert p.bands.lower < PRICE < p.bands.upper


# Rule 2.5: overlap on the chosen expiration, same underlying and option type.


@pytest.mark.parametrize(
    ("spreads", "conflict"),
    [
        ([("put", "594", "591")], False),  # the spec's example
        ([("put", "595", "592")], True),  # proposed short put = existing long
        ([("put", "589", "586")], True),  # proposed long put = existing short
        ([("call", "589", "592")], True),  # proposed short call = existing long
        ([("call", "595", "598")], True),  # proposed long call = existing short
        ([("put", "592", "589")], False),  # same strikes, same roles: no rule hit
        ([("put", "595", "591")], False),  # short 595 is a put, the long 595 a call
        ([("call", "598", "601")], False),
    ],
)
def test_overlap_cases(spreads: list[tuple[str, str, str]], conflict: bool) -> None:
    decision = decide(build(positions=[position(spreads=spreads)]))
    assert (decision.reason_code is SkipReason.CONFLICTING_POSITION) is conflict
    assert (decision.proposal is None) is conflict


def test_overlap_ignores_other_expirations_and_underlyings() -> None:
    positions = [
        position(date(2026, 3, 20), [("put", "595", "592")]),
        position(spreads=[("put", "595", "592")], underlying="SPY"),
    ]
    assert decide(build(positions=positions)).proposal is not None


def test_overlap_ignores_call_spreads_when_calls_are_omitted() -> None:
    snap = build(closes=["570"] * 19, positions=[position(spreads=[("call", "595", "598")])])
    assert decide(snap).proposal is not None


def test_overlap_does_not_try_another_expiration() -> None:
    snap = build(
        chain={FEB_20: rows(), by_dte(40): rows(expiration=by_dte(40))},
        positions=[position(spreads=[("put", "595", "592")])],
    )
    decision = decide(snap)
    assert decision.reason_code is SkipReason.CONFLICTING_POSITION
    assert decision.expiration == FEB_20


# Rule 2.6: the 30-position limit, checked first.


def many(n: int) -> list[dict[str, Any]]:
    return [position(date(2026, 3, 20), max_risk="100") for _ in range(n)]


def test_29_open_positions_still_suggest() -> None:
    assert decide(build(positions=many(POSITION_LIMIT - 1))).proposal is not None


def test_30_open_positions_is_position_limit() -> None:
    decision = decide(build(positions=many(POSITION_LIMIT)))
    assert decision.reason_code is SkipReason.POSITION_LIMIT


def test_position_limit_is_checked_before_expirations() -> None:
    snap = build(positions=many(POSITION_LIMIT), chain={by_dte(60): rows(expiration=by_dte(60))})
    assert decide(snap).reason_code is SkipReason.POSITION_LIMIT


def test_expirations_are_checked_before_overlap() -> None:
    snap = build(
        chain={by_dte(60): rows(expiration=by_dte(60))},
        positions=[position(by_dte(60), [("put", "595", "592")])],
    )
    assert decide(snap).reason_code is SkipReason.NO_EXPIRATION
