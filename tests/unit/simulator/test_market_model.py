"""Pure pieces of the simulator: pricing, chains, clock, fill model and margin."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.simulator import chains, clock, fills, market

T = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)  # 11:00 New York, a Tuesday
EXP = date(2025, 7, 18)


def quote(strike: int, is_call: bool, spot: Decimal = Decimal("600")) -> market.OptionQuote:
    return market.option_quote(
        spot=spot,
        strike=Decimal(strike),
        is_call=is_call,
        expiration=EXP,
        at=T,
        atm=0.16,
        rate=0.0425,
    )


def test_prices_are_deterministic_and_realistic() -> None:
    assert market.underlying_price(7, "SPY", T) == market.underlying_price(7, "SPY", T)
    assert market.underlying_price(7, "SPY", T) != market.underlying_price(8, "SPY", T)
    for symbol, low, high in (("SPY", 450, 750), ("QQQ", 450, 750)):
        assert low < market.underlying_price(7, symbol, T) < high


def test_daily_history_has_250_sessions_with_daily_volatility() -> None:
    history = market.daily_history(7, "SPY", T)
    assert len(history) == 250
    assert history[-1][0] == date(2025, 6, 2)
    assert all(clock.is_session(day) for day, _ in history)
    assert 0.05 < market.historical_vol([c for _, c in history], 200) < 0.40


def test_put_skew_and_widening_spreads() -> None:
    down, atm, up = quote(570, False), quote(600, False), quote(630, False)
    assert down.iv > atm.iv > up.iv
    far, near = quote(540, False), quote(600, False)
    assert (far.ask - far.bid) > (near.ask - near.bid)
    assert all(q.bid < q.ask and q.ask - q.bid >= Decimal("0.01") for q in (down, atm, up))


def test_put_call_parity_roughly() -> None:
    call, put = quote(600, True), quote(600, False)
    years = market.years_to_expiry(EXP, T)
    forward_gap = Decimal(600) - Decimal(600) * Decimal(str(2.718281828 ** (-0.0425 * years)))
    assert abs((call.theo - put.theo) - forward_gap) < Decimal("0.05")


def test_scripted_price_path_interpolates_and_holds() -> None:
    path = [
        market.PricePoint(T, Decimal("600")),
        market.PricePoint(T + timedelta(minutes=10), Decimal("610")),
    ]
    assert market.underlying_price(7, "SPY", T + timedelta(minutes=5), path) == Decimal("605.00")
    assert market.underlying_price(7, "SPY", T + timedelta(days=1), path) == Decimal("610")
    assert market.underlying_price(7, "SPY", T - timedelta(seconds=1), path) == (
        market.model_price(7, "SPY", T - timedelta(seconds=1))
    )


def test_expirations_weekly_and_monthly_beyond_70_days() -> None:
    listed = chains.expirations(T)
    assert max(chains.days_to_expiration(e.day, T) for e in listed) >= 70
    kinds = {e.day: e.kind for e in listed}
    assert kinds[date(2025, 6, 20)] == "Regular"
    assert kinds[date(2025, 6, 13)] == "Weekly"
    # Friday 2025-07-04 is a holiday: that week's expiration moves to Thursday.
    assert kinds[date(2025, 7, 3)] == "Weekly"
    assert date(2025, 7, 4) not in kinds


def test_strike_grid_is_one_dollar_around_the_money() -> None:
    grid = chains.strike_grid(Decimal("591.37"))
    assert all(b - a == 1 for a, b in itertools.pairwise(grid))
    assert Decimal(591) in grid
    assert grid[0] < Decimal("591.37") * Decimal("0.9") < grid[-1]


def test_occ_round_trip_and_streamer_symbol() -> None:
    occ = chains.occ_symbol("SPY", date(2025, 6, 20), True, Decimal(500))
    assert occ == "SPY   250620C00500000"
    parsed = chains.parse_occ(occ)
    assert parsed is not None
    assert parsed.strike == Decimal(500)
    assert parsed.streamer == ".SPY250620C500"
    assert chains.streamer_symbol("SPY", date(2025, 6, 20), False, Decimal("502.5")) == (
        ".SPY250620P502.5"
    )
    assert chains.parse_occ("SPY 250620C500") is None


def test_clock_speed_and_jump() -> None:
    now = [1000.0]
    sim = clock.SimClock(T, speed=60.0, real_time=lambda: now[0])
    now[0] += 10
    assert sim.now() == T + timedelta(minutes=10)
    sim.set(T + timedelta(days=1), speed=1.0)
    now[0] += 5
    assert sim.now() == T + timedelta(days=1, seconds=5)


def test_market_hours_holiday_and_half_day() -> None:
    assert clock.is_market_open(T)
    assert not clock.is_market_open(datetime(2025, 6, 3, 21, 0, tzinfo=UTC))
    assert not clock.is_market_open(datetime(2025, 7, 4, 15, 0, tzinfo=UTC))  # Independence Day
    half_day = clock.session_bounds(date(2025, 11, 28))  # day after Thanksgiving
    assert half_day is not None
    assert half_day[1] == datetime(2025, 11, 28, 18, 0, tzinfo=UTC)  # 13:00 New York
    assert clock.trading_session_for(datetime(2025, 7, 3, 21, 0, tzinfo=UTC)) == date(2025, 7, 7)


def leg(sells: bool, qty: int, bid: str, ask: str) -> fills.LegQuote:
    return fills.LegQuote(sells, qty, Decimal(bid), Decimal(ask))


TRIDENT = [
    leg(True, 2, "5.00", "5.20"),  # short put
    leg(False, 2, "3.90", "4.10"),  # long put
    leg(True, 1, "4.00", "4.20"),  # short call
    leg(False, 1, "2.90", "3.10"),  # long call
]


def test_trident_prices_are_per_one_ratio_unit() -> None:
    assert fills.unit_quantities(TRIDENT) == [2, 2, 1, 1]
    # natural = 2 x (5.00 - 4.10) + (4.00 - 3.10)
    assert fills.natural_price(TRIDENT) == Decimal("2.70")
    assert fills.mid_price(TRIDENT) == Decimal("3.30")


def test_two_two_order_has_gcd_two() -> None:
    puts = TRIDENT[:2]
    assert fills.ratio_gcd([2, 2]) == 2
    assert fills.natural_price(puts) == Decimal("0.90")
    assert fills.mid_price(puts) == Decimal("1.10")


@pytest.mark.parametrize(
    ("limit", "decision"),
    [
        ("2.70", fills.Decision.FILL_NOW),
        ("2.00", fills.Decision.FILL_NOW),
        ("3.30", fills.Decision.FILL_AFTER_DELAY),
        ("3.00", fills.Decision.FILL_AFTER_DELAY),
        ("3.31", fills.Decision.REST),
    ],
)
def test_fill_decisions(limit: str, decision: fills.Decision) -> None:
    assert fills.decide(Decimal(limit), TRIDENT, market_open=True) is decision
    assert fills.decide(Decimal(limit), TRIDENT, market_open=False) is fills.Decision.REST


def test_debit_orders_use_the_same_rule() -> None:
    closing = [leg(False, 1, "1.00", "1.10"), leg(True, 1, "0.40", "0.50")]
    assert fills.natural_price(closing) == Decimal("-0.70")
    assert fills.decide(Decimal("-0.70"), closing, market_open=True) is fills.Decision.FILL_NOW
    assert fills.decide(Decimal("-0.60"), closing, market_open=True) is (
        fills.Decision.FILL_AFTER_DELAY
    )
    assert fills.decide(Decimal("-0.50"), closing, market_open=True) is fills.Decision.REST


def test_leg_prices_sum_to_the_order_price() -> None:
    for price in (Decimal("3.00"), Decimal("3.17"), Decimal("2.70")):
        prices = fills.leg_prices(price, TRIDENT)
        units = fills.unit_quantities(TRIDENT)
        total = sum(
            (lq.sign * u * p for lq, u, p in zip(TRIDENT, units, prices, strict=True)),
            Decimal(0),
        )
        assert total == price
        assert all(p == p.quantize(Decimal("0.01")) and p >= 0 for p in prices)
    assert fills.execution_price(Decimal("2.00"), TRIDENT) == Decimal("2.70")


def test_margin_of_defined_risk_spreads() -> None:
    put_spread = [
        fills.OptionHolding(False, Decimal(592), -1),
        fills.OptionHolding(False, Decimal(589), 1),
    ]
    assert fills.margin_requirement(put_spread) == Decimal(300)
    trident = [
        fills.OptionHolding(False, Decimal(592), -2),
        fills.OptionHolding(False, Decimal(589), 2),
        fills.OptionHolding(True, Decimal(592), -1),
        fills.OptionHolding(True, Decimal(595), 1),
    ]
    # Only one side can lose at expiry: 2 x W x 100.
    assert fills.margin_requirement(trident) == Decimal(600)
    assert fills.margin_requirement([fills.OptionHolding(True, Decimal(600), 1)]) == 0
