"""The market-data core with plain values: throttle, staleness, bands, chain, leases, balances."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from libs.broker.models import Balances, ChainExpiration, ChainStrike, OptionChain
from libs.contracts.market import BandPosition
from libs.contracts.symbols import OccSymbol, OptionType
from services.market_data.core.balances import BalanceChanges, BalanceFigures
from services.market_data.core.cadence import Cadence
from services.market_data.core.chain import dte, select_window, window_symbols
from services.market_data.core.condition import DailyCloses, evaluate, is_change
from services.market_data.core.leases import LeaseBook
from services.market_data.core.staleness import StalenessMonitor
from services.market_data.core.throttle import Throttle

T0 = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)  # 11:00 New York
OPEN = datetime(2025, 6, 3, 13, 30, tzinfo=UTC)  # 09:30 New York


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# --- throttle --------------------------------------------------------------------------


def test_first_quote_goes_out_at_once_and_a_burst_publishes_only_its_last() -> None:
    throttle: Throttle[int] = Throttle(1.0)
    assert throttle.offer("QQQ", 1, now=10.0) == 1
    assert throttle.offer("QQQ", 2, now=10.2) is None
    assert throttle.offer("QQQ", 3, now=10.5) is None
    assert throttle.due(10.9) == []
    assert throttle.next_due() == pytest.approx(11.0)
    assert throttle.due(11.0) == [3]  # trailing edge: the latest value wins
    assert throttle.due(12.5) == []
    assert throttle.next_due() is None


def test_throttle_is_per_symbol() -> None:
    throttle: Throttle[str] = Throttle(1.0)
    assert throttle.offer("QQQ", "q1", 0.0) == "q1"
    assert throttle.offer("SPY", "s1", 0.1) == "s1"
    assert throttle.offer("QQQ", "q2", 0.2) is None
    assert throttle.due(1.0) == ["q2"]


def test_a_quiet_symbol_publishes_immediately_after_the_interval() -> None:
    throttle: Throttle[int] = Throttle(1.0)
    throttle.offer("QQQ", 1, 0.0)
    assert throttle.offer("QQQ", 2, 1.5) == 2
    assert throttle.offer("QQQ", 3, 1.6) is None
    # A held value is never overtaken by a newer one going out first.
    assert throttle.offer("QQQ", 4, 2.6) is None
    assert throttle.due(2.6) == [4]


def test_forgotten_symbol_drops_its_held_quote() -> None:
    throttle: Throttle[int] = Throttle(1.0)
    throttle.offer("QQQ", 1, 0.0)
    throttle.offer("QQQ", 2, 0.1)
    throttle.forget("QQQ")
    assert throttle.due(5.0) == []
    assert throttle.held == 0


# --- staleness -------------------------------------------------------------------------


def test_goes_stale_after_max_age_while_open_and_recovers_on_the_next_quote() -> None:
    monitor = StalenessMonitor(s(60))
    monitor.watch("QQQ", T0)
    monitor.quote("QQQ", T0)
    assert monitor.check(T0 + s(60), OPEN) == []  # exactly the age is still fresh
    went = monitor.check(T0 + s(61), OPEN)
    assert [(w.symbol, w.last_quote_at, w.age) for w in went] == [("QQQ", T0, s(61))]
    assert monitor.is_stale("QQQ")
    assert monitor.check(T0 + s(200), OPEN) == []  # reported once
    recovered = monitor.quote("QQQ", T0 + s(300))
    assert recovered is not None
    assert recovered.stale_since == T0 + s(61)
    assert not monitor.is_stale("QQQ")
    assert monitor.quote("QQQ", T0 + s(301)) is None


def test_never_stale_while_the_market_is_closed() -> None:
    monitor = StalenessMonitor(s(60))
    monitor.watch("QQQ", T0)
    assert monitor.check(T0 + timedelta(hours=10), None) == []
    assert not monitor.is_stale("QQQ")


def test_age_counts_from_the_session_open_not_yesterdays_last_quote() -> None:
    monitor = StalenessMonitor(s(60))
    yesterday = OPEN - timedelta(hours=20)
    monitor.watch("QQQ", yesterday)
    monitor.quote("QQQ", yesterday)
    assert monitor.check(OPEN + s(30), OPEN) == []
    went = monitor.check(OPEN + s(61), OPEN)
    assert [w.symbol for w in went] == ["QQQ"]


def test_a_symbol_that_never_quoted_goes_stale_with_no_last_quote() -> None:
    monitor = StalenessMonitor(s(60))
    monitor.watch("SPY", T0)
    went = monitor.check(T0 + s(61), OPEN)
    assert went[0].last_quote_at is None
    monitor.unwatch("SPY")
    assert monitor.stale_symbols() == []


# --- bands -----------------------------------------------------------------------------


def closes_book(values: list[int], first: date = date(2025, 5, 1)) -> DailyCloses:
    book = DailyCloses()
    for i, v in enumerate(values):
        book.upsert(first + timedelta(days=i), Decimal(v))
    return book


def test_closes_window_keeps_the_last_19_before_today_and_upserts_by_day() -> None:
    book = closes_book(list(range(100, 130)))  # 2025-05-01 .. 2025-05-30
    today = date(2025, 5, 30)
    window = book.window(today)
    assert len(window) == 19
    assert window[-1] == Decimal(128)  # 05-29: today's candle is not a completed close
    book.upsert(date(2025, 5, 29), Decimal(999))
    assert book.window(today)[-1] == Decimal(999)
    assert book.window(date(2025, 5, 3)) == (Decimal(100), Decimal(101))


def test_condition_detects_position_and_stress() -> None:
    closes = tuple(Decimal(100 + (i % 3)) for i in range(19))
    inside = evaluate(closes, Decimal(101))
    assert inside.band_position is BandPosition.INSIDE
    assert not inside.stressed
    low = evaluate(closes, Decimal(90))
    assert low.band_position is BandPosition.AT_OR_BELOW_LOWER
    assert low.stressed
    assert low.stressed_reason is not None
    assert "lower band" in low.stressed_reason
    high = evaluate(closes, Decimal(110))
    assert high.band_position is BandPosition.AT_OR_ABOVE_UPPER


def test_change_is_first_then_only_position_or_stress() -> None:
    closes = tuple(Decimal(100 + (i % 3)) for i in range(19))
    a = evaluate(closes, Decimal(101))
    b = evaluate(closes, Decimal("101.2"))
    c = evaluate(closes, Decimal(90))
    assert is_change(None, a)
    assert not is_change(a, b)  # same position and stress: the price moved, nothing more
    assert is_change(b, c)


def test_custom_stress_detector_is_pluggable() -> None:
    closes = tuple(Decimal(100 + (i % 3)) for i in range(19))
    cond = evaluate(closes, Decimal(101), detector=lambda price, bands: True)
    assert cond.stressed
    assert cond.band_position is BandPosition.INSIDE


# --- chain window ----------------------------------------------------------------------


def chain(expirations: list[date], strikes: range) -> OptionChain:
    def strike(k: int, exp: date) -> ChainStrike:
        put = OccSymbol.build("QQQ", exp, OptionType.PUT, Decimal(k))
        call = OccSymbol.build("QQQ", exp, OptionType.CALL, Decimal(k))
        return ChainStrike(
            strike=Decimal(k),
            call=call,
            put=put,
            call_streamer_symbol=call.streamer_symbol,
            put_streamer_symbol=put.streamer_symbol,
        )

    return OptionChain(
        underlying="QQQ",
        root_symbol="QQQ",
        shares_per_contract=100,
        tick_size=Decimal("0.01"),
        expirations=tuple(
            ChainExpiration(
                expiration_date=exp,
                days_to_expiration=999,  # deliberately wrong: DTE comes from the clock
                expiration_type="Weekly",
                settlement_type="PM",
                strikes=tuple(strike(k, exp) for k in reversed(strikes)),
            )
            for exp in reversed(expirations)
        ),
    )


def test_window_selects_dte_range_inclusive_and_strikes_around_mid() -> None:
    today = date(2025, 6, 3)
    exps = [today + timedelta(days=d) for d in (29, 30, 44, 50, 51)]
    window = select_window(
        chain(exps, range(480, 561)),
        today=today,
        mid=Decimal("520.5"),
        min_dte=30,
        max_dte=50,
        strike_range=Decimal(20),
    )
    assert [e.dte for e in window] == [30, 44, 50]
    strikes = [k.strike for k in window[0].strikes]
    assert strikes[0] == Decimal(501)  # 500.5 .. 540.5
    assert strikes[-1] == Decimal(540)
    assert strikes == sorted(strikes)
    assert window[0].strikes[0].put.option_type is OptionType.PUT
    symbols = window_symbols(window)
    assert len(symbols) == 3 * 40 * 2
    assert len(set(symbols)) == len(symbols)


def test_window_bounds_are_inclusive_on_strikes() -> None:
    today = date(2025, 6, 3)
    window = select_window(
        chain([today + timedelta(days=35)], range(490, 511)),
        today=today,
        mid=Decimal(500),
        min_dte=0,
        max_dte=100,
        strike_range=Decimal(10),
    )
    assert [k.strike for k in window[0].strikes] == [Decimal(k) for k in range(490, 511)]


def test_dte_is_calendar_days() -> None:
    assert dte(date(2025, 7, 18), date(2025, 6, 3)) == 45
    assert dte(date(2025, 6, 3), date(2025, 6, 3)) == 0


# --- leases ----------------------------------------------------------------------------


def test_leases_extend_to_the_latest_end_and_expire() -> None:
    book = LeaseBook()
    assert book.extend(["A", "B"], T0 + s(60)) == ["A", "B"]
    assert book.extend(["A"], T0 + s(120)) == []
    assert book.extend(["B"], T0 + s(30)) == []  # a shorter renewal does not shorten
    assert book.until("B") == T0 + s(60)
    assert book.expire(T0 + s(59)) == []
    assert book.expire(T0 + s(60)) == ["B"]
    assert book.active() == frozenset({"A"})
    assert book.expire(T0 + s(500)) == ["A"]
    assert len(book) == 0


# --- balances --------------------------------------------------------------------------


def balances(dbp: str, updated: datetime = T0) -> Balances:
    return Balances(
        account_number="5WT00001",
        derivative_buying_power=Decimal(dbp),
        equity_buying_power=Decimal("200000"),
        net_liquidating_value=Decimal("100000"),
        cash_balance=Decimal("100000"),
        maintenance_requirement=Decimal(0),
        updated_at=updated,
    )


def test_balances_publish_first_then_only_on_change() -> None:
    changes = BalanceChanges()
    first = BalanceFigures.of(balances("100000.00"))
    assert changes.should_publish("5WT00001", first)
    changes.published("5WT00001", first)
    # Same figures, a newer broker timestamp and another scale: not a change.
    again = BalanceFigures.of(balances("100000.0", T0 + s(30)))
    assert not changes.should_publish("5WT00001", again)
    moved = BalanceFigures.of(balances("99500.00"))
    assert changes.should_publish("5WT00001", moved)
    assert changes.should_publish("5WT00002", first)  # per account
    changes.forget("5WT00001")
    assert changes.should_publish("5WT00001", first)


# --- cadence ---------------------------------------------------------------------------


def test_cadence_is_due_first_then_every_interval_without_catch_up() -> None:
    cadence = Cadence(s(30))
    assert cadence.due(T0)
    assert not cadence.due(T0 + s(29))
    assert cadence.due(T0 + s(30))
    assert cadence.due(T0 + s(3600))  # one run after a jump, not a burst
    assert not cadence.due(T0 + s(3601))
    cadence.reset()
    assert cadence.due(T0 + s(3602))
    cadence.retry_at(T0 + s(3610))
    assert not cadence.due(T0 + s(3609))
    assert cadence.due(T0 + s(3610))
