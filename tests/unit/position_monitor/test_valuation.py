"""Valuation from quotes, DTE in New York, and the publishing cadence (DOMAIN.md 6, 8)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from libs.contracts.positions import PositionUpdated
from libs.contracts.strategy import SpreadKind
from services.position_monitor.core import (
    MissingQuote,
    Published,
    days_to_expiration,
    realized_pnl,
    valuation_due,
    value_position,
    value_spread,
)
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    EXPIRATION,
    LONG_CALL,
    LONG_PUT,
    NOW,
    POSITION,
    SHORT_CALL,
    SHORT_PUT,
    D,
    quote,
    quotes,
    spread,
    trident,
)

MARKET = quotes(
    quote(SHORT_PUT, "2.00", "2.20"),  # mid 2.10
    quote(LONG_PUT, "1.10", "1.15"),  # mid 1.125
    quote(SHORT_CALL, "1.50", "1.60"),  # mid 1.55
    quote(LONG_CALL, "0.90", "1.00"),  # mid 0.95
)


def test_spread_closing_costs_and_unrealized_pnl() -> None:
    value = value_spread(spread(entry="1.05", quantity=2), MARKET)
    assert value.closing_cost_mid == D("0.975")  # 2.10 - 1.125
    assert value.closing_cost_natural == D("1.10")  # 2.20 - 1.10
    assert value.unrealized_pnl == D("15.00")  # (1.05 - 0.975) x 100 x 2
    mark = value.mark()
    assert (mark.kind, mark.closing_cost_mid, mark.unrealized_pnl) == (
        SpreadKind.PUT_SPREAD_1,
        D("0.975"),
        D("15.00"),
    )


def test_losing_spread_has_negative_unrealized_pnl() -> None:
    market = quotes(quote(SHORT_PUT, "3.00", "3.10"), quote(LONG_PUT, "0.90", "1.00"))
    assert value_spread(spread(entry="1.05"), market).unrealized_pnl == D(
        "-105.00"
    )  # (1.05 - 2.10) x 100


def test_position_totals_over_open_spreads() -> None:
    valuation = value_position(trident(), EXPIRATION, MARKET, NOW)
    # puts: (1.05 - 0.975) x 100 = 7.50 each; call: (0.80 - 0.60) x 100 = 20
    assert valuation.unrealized_pnl == D("35.00")
    assert valuation.dte == 46
    # The two put spreads share their quotes: four symbols, in symbol order.
    assert [q.symbol for q in valuation.marks] == sorted(
        [SHORT_PUT, LONG_PUT, SHORT_CALL, LONG_CALL]
    )
    only_calls = value_position(trident()[2:], EXPIRATION, MARKET, NOW)
    assert only_calls.unrealized_pnl == D("20.00")
    assert len(only_calls.marks) == 2


def test_event_fields_make_a_valid_position_updated() -> None:
    valuation = value_position(trident(), EXPIRATION, MARKET, NOW)
    event = PositionUpdated(
        occurred_at=NOW,
        producer="position_monitor",
        account_id=ACCOUNT,
        correlation_id=POSITION,
        position_id=POSITION,
        **valuation.event_fields(),
    )
    assert event.unrealized_pnl == sum(s.unrealized_pnl for s in event.spreads)
    # A JSON round trip keeps every figure to the cent and beyond (replay).
    again = PositionUpdated.model_validate_json(event.model_dump_json())
    assert again.spreads == event.spreads
    assert again.unrealized_pnl == D("35.00")


def test_missing_quote_is_an_error_not_a_guess() -> None:
    market = quotes(quote(SHORT_PUT, "2.00", "2.20"))
    with pytest.raises(MissingQuote) as err:
        value_spread(spread(), market)
    assert err.value.symbol == LONG_PUT


def test_no_open_spread_is_no_valuation() -> None:
    with pytest.raises(ValueError, match="at least one"):
        value_position((), EXPIRATION, MARKET, NOW)


@pytest.mark.parametrize(
    ("now", "dte"),
    [
        (datetime(2026, 2, 13, 20, 45, tzinfo=UTC), 7),
        # 03:00 UTC on the 14th is still the 13th in New York.
        (datetime(2026, 2, 14, 3, 0, tzinfo=UTC), 7),
        (datetime(2026, 2, 14, 5, 0, tzinfo=UTC), 6),
        (datetime(2026, 2, 20, 15, 0, tzinfo=UTC), 0),
        (datetime(2026, 2, 21, 15, 0, tzinfo=UTC), -1),
    ],
)
def test_dte_counts_new_york_calendar_days(now: datetime, dte: int) -> None:
    assert days_to_expiration(EXPIRATION, now) == dte


def test_valuation_dte_is_floored_at_zero() -> None:
    after = datetime(2026, 2, 23, 15, 0, tzinfo=UTC)
    assert value_position(trident(), EXPIRATION, MARKET, after).dte == 0


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        days_to_expiration(date(2026, 2, 20), datetime(2026, 1, 5, 11, 0))  # noqa: DTZ001


def test_realized_pnl() -> None:
    assert realized_pnl(D("1.05"), D("0.63"), 1) == D("42.00")
    assert realized_pnl(D("1.05"), D("2.11"), 2) == D("-212.00")


class TestValuationDue:
    figures = value_position(trident(), EXPIRATION, MARKET, NOW).figures

    def test_first_valuation_is_due(self) -> None:
        assert valuation_due(None, self.figures, NOW)

    def test_not_within_ten_seconds_even_if_changed(self) -> None:
        moved = quotes(*MARKET.values(), quote(SHORT_PUT, "2.05", "2.25"))
        changed = value_position(trident(), EXPIRATION, moved, NOW).figures
        last = Published(NOW, self.figures)
        assert not valuation_due(last, changed, NOW + timedelta(seconds=9.999))
        assert valuation_due(last, changed, NOW + timedelta(seconds=10))

    def test_not_when_nothing_changed(self) -> None:
        last = Published(NOW, self.figures)
        assert not valuation_due(last, self.figures, NOW + timedelta(minutes=5))

    def test_new_quote_time_at_same_prices_is_no_change(self) -> None:
        later = NOW + timedelta(seconds=30)
        requoted = quotes(
            *(quote(q.symbol, str(q.bid), str(q.ask), later) for q in MARKET.values())
        )
        figures = value_position(trident(), EXPIRATION, requoted, later).figures
        assert not valuation_due(Published(NOW, self.figures), figures, later)

    def test_a_closed_spread_or_a_new_day_is_a_change(self) -> None:
        last = Published(NOW, self.figures)
        fewer = value_position(trident()[1:], EXPIRATION, MARKET, NOW).figures
        assert valuation_due(last, fewer, NOW + timedelta(seconds=10))
        tomorrow = NOW + timedelta(days=1)
        next_day = value_position(trident(), EXPIRATION, MARKET, tomorrow).figures
        assert valuation_due(last, next_day, tomorrow)

    def test_equal_decimals_with_other_exponents_are_no_change(self) -> None:
        requoted = quotes(*(quote(q.symbol, f"{q.bid}0", f"{q.ask}0") for q in MARKET.values()))
        figures = value_position(trident(), EXPIRATION, requoted, NOW).figures
        assert figures == self.figures
        assert not valuation_due(Published(NOW, self.figures), figures, NOW + timedelta(hours=1))


def test_decimal_sanity() -> None:
    assert isinstance(value_spread(spread(), MARKET).closing_cost_mid, Decimal)
