"""The invariants the contracts enforce, with DOMAIN.md's worked example (QQQ 592/589/595)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from pydantic import ValidationError

from libs.contracts.account import AccountLinked, AccountSettings, TradingMode
from libs.contracts.base import Underlying
from libs.contracts.commands import GetPositions
from libs.contracts.execution import (
    LegFill,
    OrderAction,
    OrderFilled,
    OrderLeg,
    OrderPurpose,
    OrderStatus,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.market import BandPosition, BollingerBands, Quote
from libs.contracts.positions import ExitOrderPlaced, PositionSpread
from libs.contracts.risk import RiskTemplate, WarningLevel
from libs.contracts.strategy import (
    PROFIT_TARGETS,
    SpreadKind,
    SpreadLeg,
    SuggestionApproved,
    SuggestionGenerated,
)
from libs.contracts.symbols import OccSymbol
from libs.contracts.system import (
    NotificationChannel,
    NotificationRequested,
    NotificationTopic,
    TradingResumed,
)
from tests.unit.contracts.examples import (
    ACCOUNT,
    CALL_592,
    CALL_595,
    NOW,
    PUT_589,
    PUT_592,
    envelope,
    leg,
    opening_fill,
    qqq_spreads,
    qqq_suggestion,
    spread,
    trident_legs,
)

# --- envelope ---------------------------------------------------------------------------


def test_an_event_gets_a_time_ordered_uuid7_id():
    first, second = opening_fill(), opening_fill()

    assert first.event_id.version == 7
    assert first.event_id < second.event_id


def test_a_naive_timestamp_is_refused():
    with pytest.raises(ValidationError, match="timezone"):
        OrderFilled.model_validate(
            {**opening_fill().model_dump(), "occurred_at": NOW.replace(tzinfo=None)}
        )


def test_events_are_frozen():
    event = opening_fill()

    with pytest.raises(ValidationError, match="frozen"):
        event.broker_order_id = "2002"  # type: ignore[misc]


def test_a_caused_event_shares_the_correlation_and_names_its_cause():
    cause = opening_fill()

    effect = TradingResumed(
        occurred_at=NOW, producer="execution", account_id=ACCOUNT, **cause.causation(), message="ok"
    )

    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == cause.event_id


def test_an_event_caused_by_a_command_names_the_command():
    command = GetPositions(account_id=ACCOUNT)

    assert command.causation() == {
        "correlation_id": command.correlation_id,
        "causation_id": command.command_id,
    }


def test_payload_and_envelope_split_an_event_in_two():
    event = opening_fill()

    assert event.envelope()["account_id"] == ACCOUNT
    assert "legs" in event.payload()
    assert "account_id" not in event.payload()


# --- suggestions ------------------------------------------------------------------------


def test_the_worked_example_is_a_valid_trident():
    suggestion = qqq_suggestion()

    put_1 = suggestion.spread(SpreadKind.PUT_SPREAD_1)
    call = suggestion.spread(SpreadKind.CALL_SPREAD)
    assert put_1 is not None
    assert call is not None
    assert (put_1.short_strike, put_1.long_strike, put_1.width) == (
        Decimal(592),
        Decimal(589),
        Decimal(3),
    )
    assert (call.short_strike, call.long_strike) == (Decimal(592), Decimal(595))
    assert suggestion.includes_call_spread


def test_spread_credits_follow_the_quotes():
    put = spread(
        SpreadKind.PUT_SPREAD_1, leg(PUT_592, "9.10", "9.20"), leg(PUT_589, "8.00", "8.10")
    )

    assert put.natural_credit == Decimal("1.00")  # short bid 9.10 - long ask 8.10
    assert put.mid_credit == Decimal("1.10")  # 9.15 - 8.05


def test_a_leg_mid_must_be_the_mid_of_its_quote():
    with pytest.raises(ValidationError, match=r"mid must equal \(bid \+ ask\) / 2"):
        SpreadLeg(symbol=PUT_592, bid=Decimal(1), ask=Decimal(2), mid=Decimal(2))


def test_a_put_spread_buys_the_lower_strike():
    with pytest.raises(ValidationError, match="long strike must lie below"):
        spread(SpreadKind.PUT_SPREAD_1, leg(PUT_589, "8.00", "8.10"), leg(PUT_592, "9.10", "9.20"))


def test_a_call_spread_is_built_from_calls():
    with pytest.raises(ValidationError, match="must both be CALL options"):
        spread(SpreadKind.CALL_SPREAD, leg(PUT_592, "9.10", "9.20"), leg(CALL_595, "7.00", "7.10"))


def test_near_a_band_the_call_spread_is_left_out_with_a_reason():
    suggestion = qqq_suggestion(near_bollinger_band=True, band_reason="591 >= upper band 590.4")

    assert [s.kind for s in suggestion.spreads] == [
        SpreadKind.PUT_SPREAD_1,
        SpreadKind.PUT_SPREAD_2,
    ]
    assert suggestion.spread(SpreadKind.CALL_SPREAD) is None


def test_near_a_band_a_reason_is_required():
    with pytest.raises(ValidationError, match="band_reason is required"):
        qqq_suggestion(near_bollinger_band=True)


def test_a_call_spread_near_a_band_is_refused():
    with pytest.raises(ValidationError, match="spreads must be PUT_SPREAD_1, PUT_SPREAD_2 in that"):
        qqq_suggestion(near_bollinger_band=True, band_reason="at upper", spreads=qqq_spreads())


def test_totals_are_the_sum_of_the_spreads():
    with pytest.raises(ValidationError, match="total_mid_credit must be the sum"):
        qqq_suggestion(total_mid_credit=Decimal("9.99"))


def test_every_spread_shares_the_suggestions_strikes():
    with pytest.raises(ValidationError, match="do not match short_strike and width"):
        qqq_suggestion(short_strike=Decimal(590))


def test_a_suggestion_expires_after_it_was_created():
    with pytest.raises(ValidationError, match="expires_at must be after created_at"):
        qqq_suggestion(expires_at=NOW - timedelta(seconds=1))


def test_profit_targets_are_40_60_and_50_percent():
    assert {
        SpreadKind.PUT_SPREAD_1: Decimal("0.40"),
        SpreadKind.PUT_SPREAD_2: Decimal("0.60"),
        SpreadKind.CALL_SPREAD: Decimal("0.50"),
    } == PROFIT_TARGETS
    assert SpreadKind.CALL_SPREAD.profit_target == Decimal("0.50")


def test_a_generated_suggestion_carries_the_quotes_it_used():
    event = SuggestionGenerated(**envelope(producer="strategy"), suggestion=qqq_suggestion())

    assert event.suggestion.quotes[0].symbol == "QQQ"


# --- approval ---------------------------------------------------------------------------


def _approval(**fields: object) -> SuggestionApproved:
    return SuggestionApproved(
        **envelope(), suggestion_id=UUID(int=1), limit_credit=Decimal("3.35"), **fields
    )


def test_an_approval_above_a_warning_level_carries_the_confirmation():
    approval = _approval(warning_level=WarningLevel.WARNING, warning_confirmed=True)

    assert approval.warning_confirmed


def test_an_unconfirmed_approval_above_a_warning_level_is_refused():
    with pytest.raises(ValidationError, match="needs warning_confirmed"):
        _approval(warning_level=WarningLevel.CRITICAL, approved_by="alice")


def test_an_automatic_approval_has_no_user_and_no_custom_credit():
    with pytest.raises(ValidationError, match="automatic approval has no custom_credit"):
        _approval(automatic=True, custom_credit=Decimal("3.40"))


# --- orders -----------------------------------------------------------------------------


def _order(
    purpose: OrderPurpose, legs: tuple[OrderLeg, ...], tif: TimeInForce, **ids: object
) -> OrderSubmitted:
    return OrderSubmitted(
        **envelope(producer="execution"),
        order_id=UUID(int=10),
        client_tag="senex-10",
        purpose=purpose,
        underlying="QQQ",
        legs=legs,
        limit_price=Decimal("3.30"),
        time_in_force=tif,
        **ids,
    )


_OPEN_IDS = {"suggestion_id": UUID(int=1), "reservation_id": UUID(int=2)}
_EXIT_IDS = {"position_id": UUID(int=3), "spread_kind": SpreadKind.PUT_SPREAD_1}


def test_the_trident_opening_order_is_one_unit_of_2_2_1_1():
    order = _order(OrderPurpose.OPEN, trident_legs(), TimeInForce.DAY, **_OPEN_IDS)

    assert [leg.quantity for leg in order.legs] == [2, 2, 1, 1]
    assert order.ratio_unit == 1


def test_the_trident_without_calls_prices_per_unit_of_2():
    order = _order(OrderPurpose.OPEN, trident_legs()[:2], TimeInForce.DAY, **_OPEN_IDS)

    assert order.ratio_unit == 2


def test_an_opening_order_is_a_day_order():
    with pytest.raises(ValidationError, match="an OPEN order is DAY"):
        _order(OrderPurpose.OPEN, trident_legs(), TimeInForce.GTC, **_OPEN_IDS)


def test_an_opening_order_names_its_suggestion_and_reservation():
    with pytest.raises(ValidationError, match="names suggestion_id and reservation_id"):
        _order(OrderPurpose.OPEN, trident_legs(), TimeInForce.DAY)


def test_an_exit_can_never_open_new_legs():
    with pytest.raises(ValidationError, match="only use BUY_TO_CLOSE / SELL_TO_CLOSE"):
        _order(OrderPurpose.STOP_LOSS, trident_legs()[:2], TimeInForce.GTC, **_EXIT_IDS)


def test_an_exit_is_good_till_cancelled():
    closing = trident_legs(action_open=False)[:2]

    with pytest.raises(ValidationError, match="PROFIT_TARGET order is GTC"):
        _order(OrderPurpose.PROFIT_TARGET, closing, TimeInForce.DAY, **_EXIT_IDS)


def test_an_order_lists_each_symbol_once():
    legs = (trident_legs()[0], trident_legs()[0])

    with pytest.raises(ValidationError, match="each symbol once"):
        _order(OrderPurpose.OPEN, legs, TimeInForce.DAY, **_OPEN_IDS)


def test_an_exit_order_decision_closes_one_spread_at_a_debit():
    exit_order = ExitOrderPlaced(
        **envelope(producer="position_monitor"),
        position_id=UUID(int=3),
        spread_kind=SpreadKind.PUT_SPREAD_1,
        order_id=UUID(int=11),
        purpose=OrderPurpose.PROFIT_TARGET,
        legs=(
            OrderLeg(symbol=PUT_592, action=OrderAction.BUY_TO_CLOSE, quantity=1),
            OrderLeg(symbol=PUT_589, action=OrderAction.SELL_TO_CLOSE, quantity=1),
        ),
        limit_price=Decimal("-0.66"),
        reason="profit target: keep 40 % of entry credit 1.10",
    )

    assert exit_order.time_in_force is TimeInForce.GTC


def test_an_exit_order_decision_is_not_an_opening():
    with pytest.raises(ValidationError, match="purpose is not OPEN"):
        ExitOrderPlaced(
            **envelope(),
            position_id=UUID(int=3),
            spread_kind=SpreadKind.PUT_SPREAD_1,
            order_id=UUID(int=11),
            purpose=OrderPurpose.OPEN,
            legs=trident_legs()[:2],
            limit_price=Decimal("1.00"),
            time_in_force=TimeInForce.DAY,
            reason="wrong",
        )


def _fill(symbol: OccSymbol, quantity: int, price: str, fill_id: str) -> LegFill:
    return LegFill(
        symbol=symbol,
        action=OrderAction.SELL_TO_OPEN,
        quantity=quantity,
        fill_price=Decimal(price),
        broker_fill_id=fill_id,
        filled_at=NOW,
    )


def test_a_fill_report_gives_quantity_and_average_price_per_leg():
    filled = opening_fill().model_copy(
        update={"legs": (_fill(PUT_592, 1, "9.10", "f-1"), _fill(PUT_592, 1, "9.20", "f-2"))}
    )

    assert filled.filled_quantity(PUT_592) == 2
    assert filled.average_fill_price(PUT_592) == Decimal("9.15")
    assert filled.average_fill_price(CALL_592) is None


def test_a_broker_fill_id_appears_once():
    with pytest.raises(ValidationError, match="broker_fill_id values must be unique"):
        OrderFilled(
            **envelope(),
            order_id=UUID(int=1),
            broker_order_id="1001",
            legs=(_fill(PUT_592, 1, "9.10", "f-1"), _fill(PUT_589, 1, "8.10", "f-1")),
        )


@pytest.mark.parametrize("status", list(OrderStatus))
def test_only_filled_cancelled_rejected_expired_and_replaced_orders_are_final(status):
    final = {"FILLED", "CANCELLED", "REJECTED", "EXPIRED", "REPLACED"}

    assert status.is_terminal == (status.value in final)


# --- positions --------------------------------------------------------------------------


def test_a_spreads_max_loss_is_its_width_less_its_entry_credit():
    put = PositionSpread(
        kind=SpreadKind.PUT_SPREAD_1,
        short_symbol=PUT_592,
        long_symbol=PUT_589,
        entry_credit=Decimal("1.10"),
        profit_target=Decimal("0.40"),
    )

    assert put.max_loss == Decimal("1.90")


# --- market -----------------------------------------------------------------------------


def test_a_quote_mid_is_exact():
    quote = Quote(symbol=PUT_592, bid=Decimal("1.00"), ask=Decimal("1.01"), quoted_at=NOW)

    assert quote.mid == Decimal("1.005")
    assert quote.is_two_sided


def test_bands_are_ordered():
    with pytest.raises(ValidationError, match="lower <= middle <= upper"):
        BollingerBands(lower=Decimal(600), middle=Decimal(595), upper=Decimal(590))


def test_a_band_position_names_the_side_touched():
    assert {p.value for p in BandPosition} == {"INSIDE", "AT_OR_ABOVE_UPPER", "AT_OR_BELOW_LOWER"}


# --- accounts and notifications ---------------------------------------------------------


def test_settings_hold_underlyings_as_a_sorted_subset_of_qqq_and_spy():
    settings = AccountSettings(
        risk_template=RiskTemplate.MODERATE, underlyings=["SPY", "QQQ", "SPY"]
    )

    assert settings.underlyings == (Underlying.QQQ, Underlying.SPY)
    with pytest.raises(ValidationError, match=r"underlyings\.0"):
        AccountSettings(risk_template=RiskTemplate.MODERATE, underlyings=["IWM"])


def test_settings_default_to_manual_trading_at_mid():
    settings = AccountSettings(risk_template=RiskTemplate.CONSERVATIVE)

    assert (settings.automation_enabled, settings.automation_offset_cents) == (False, 0)


def test_a_linked_account_is_identified_by_its_broker_number_and_holds_no_secret():
    linked = AccountLinked(**envelope(), user_id="alice", mode=TradingMode.PAPER)

    assert linked.account_number == ACCOUNT
    assert not {"secret", "token", "password", "refresh_token"} & set(AccountLinked.model_fields)


def test_a_notification_goes_to_at_least_one_channel():
    with pytest.raises(ValidationError, match="channels"):
        NotificationRequested(
            **envelope(),
            notification_id=UUID(int=1),
            topic=NotificationTopic.PARTIAL_FILL,
            channels=[],
            severity="WARNING",
            title="Partial fill",
            message="2 of 4 legs filled",
        )


def test_a_partial_fill_notifies_by_email_banner_and_flag():
    note = NotificationRequested(
        **envelope(),
        notification_id=UUID(int=1),
        topic=NotificationTopic.PARTIAL_FILL,
        channels=["EMAIL", "DASHBOARD_FLAG", "BANNER"],
        severity="WARNING",
        title="Partial fill",
        message="2 of 4 legs filled",
    )

    assert set(note.channels) == set(NotificationChannel)
