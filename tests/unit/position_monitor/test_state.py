"""The monitor's state (exit orders per spread), sync inputs and position views."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from libs.broker.models import BrokerPosition
from libs.contracts.account import AccountSettings, AccountSettingsChanged
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import (
    CancelReason,
    LegFill,
    OrderAccepted,
    OrderAction,
    OrderCancelled,
    OrderFilled,
    OrderLeg,
    OrderPurpose,
    OrderRejected,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    HeldLeg,
    PositionNeedsAttention,
    PositionOpened,
)
from libs.contracts.risk import RiskTemplate
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import NotificationTopic
from services.position_monitor.core import AppPosition, SyncFinding
from services.position_monitor.state import DEFAULT_EMAIL_TOPICS, MonitorState
from services.position_monitor.syncing import app_positions, broker_holdings, confirmed
from services.position_monitor.views import position_view
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    EXPIRATION,
    LONG_PUT,
    NOW,
    POSITION,
    SHORT_PUT,
    trident,
)

D = Decimal
PS1 = SpreadKind.PUT_SPREAD_1


def env(**extra: Any) -> dict[str, Any]:
    return {
        "occurred_at": NOW,
        "producer": "test",
        "account_id": ACCOUNT,
        "correlation_id": uuid4(),
        **extra,
    }


def opened() -> PositionOpened:
    spreads = trident()
    return PositionOpened(
        **env(),
        position_id=POSITION,
        suggestion_id=uuid4(),
        opening_order_id=uuid4(),
        underlying="SPY",
        expiration=EXPIRATION,
        width=D(3),
        spreads=spreads,
        total_entry_credit=sum(s.entry_credit for s in spreads),
        max_risk=D(600),
    )


def legs() -> tuple[OrderLeg, ...]:
    return (
        OrderLeg(symbol=SHORT_PUT, action=OrderAction.BUY_TO_CLOSE, quantity=1),
        OrderLeg(symbol=LONG_PUT, action=OrderAction.SELL_TO_CLOSE, quantity=1),
    )


def placed(order_id: UUID, purpose: OrderPurpose = OrderPurpose.PROFIT_TARGET) -> ExitOrderPlaced:
    return ExitOrderPlaced(
        **env(),
        position_id=POSITION,
        spread_kind=PS1,
        order_id=order_id,
        purpose=purpose,
        legs=legs(),
        limit_price=D("-0.63"),
        reason="target",
    )


def submitted(order_id: UUID) -> OrderSubmitted:
    return OrderSubmitted(
        **env(),
        order_id=order_id,
        client_tag=f"t-{order_id.hex[:8]}",
        purpose=OrderPurpose.PROFIT_TARGET,
        underlying="SPY",
        legs=legs(),
        limit_price=D("-0.63"),
        time_in_force=TimeInForce.GTC,
        position_id=POSITION,
        spread_kind=PS1,
    )


def fold(*events: Any) -> MonitorState:
    state = MonitorState()
    for event in events:
        state.apply(event)
    return state


def spread_record(state: MonitorState) -> Any:
    position = state.position(ACCOUNT, POSITION)
    assert position is not None
    found = position.spread(PS1)
    assert found is not None
    return found


def test_a_placed_exit_works_until_it_ends_and_a_fill_is_kept() -> None:
    order = uuid4()
    state = fold(opened(), placed(order))
    working = state.working_exit(spread_record(state))
    assert working is not None
    assert (working.order_id, working.purpose, working.limit_price) == (
        order,
        OrderPurpose.PROFIT_TARGET,
        D("-0.63"),
    )
    fill = LegFill(
        symbol=SHORT_PUT,
        action=OrderAction.BUY_TO_CLOSE,
        quantity=1,
        fill_price=D("0.70"),
        broker_fill_id="f1",
        filled_at=NOW,
    )
    state.apply(submitted(order))
    state.apply(OrderAccepted(**env(), order_id=order, broker_order_id="1"))
    assert state.working_exit(spread_record(state)) is not None
    state.apply(OrderFilled(**env(), order_id=order, broker_order_id="1", legs=(fill,)))
    assert state.working_exit(spread_record(state)) is None
    filled = state.closing_fill(POSITION, PS1)
    assert filled is not None
    assert filled.fills == (fill,)
    # A late cancel of a filled order changes nothing.
    state.apply(
        OrderCancelled(**env(), order_id=order, broker_order_id="1", reason=CancelReason.BROKER)
    )
    assert state.closing_fill(POSITION, PS1) is not None


def test_a_cancelled_or_rejected_exit_is_not_working() -> None:
    first, second = uuid4(), uuid4()
    state = fold(opened(), placed(first), submitted(first))
    state.apply(OrderRejected(**env(), order_id=first, kind=ErrorKind.ORDER_REJECTED, reason="no"))
    assert state.working_exit(spread_record(state)) is None
    # An exit execution could not even record (flagged ORDER_FAILED) is not working either.
    state.apply(placed(second, OrderPurpose.STOP_LOSS))
    assert state.working_exit(spread_record(state)) is not None
    state.apply(
        PositionNeedsAttention(
            **env(),
            position_id=POSITION,
            underlying="SPY",
            reason=AttentionReason.ORDER_FAILED,
            message="could not place",
            order_id=second,
            app_managed=True,
        )
    )
    assert state.working_exit(spread_record(state)) is None


def test_email_topics_default_to_all_then_follow_the_settings() -> None:
    state = fold(opened())
    assert state.topics(ACCOUNT) == DEFAULT_EMAIL_TOPICS == tuple(NotificationTopic)
    state.apply(
        AccountSettingsChanged(
            **env(),
            user_id="alice",
            settings=AccountSettings(
                risk_template=RiskTemplate.CONSERVATIVE,
                email_topics=(NotificationTopic.STOP_LOSS,),
            ),
        )
    )
    assert state.topics(ACCOUNT) == (NotificationTopic.STOP_LOSS,)


def test_the_accounts_email_address_follows_its_settings() -> None:
    state = fold(opened())
    assert state.email_of(ACCOUNT) is None  # the operator's SENEX_SMTP_RECIPIENT applies

    def settings(email: str | None) -> AccountSettingsChanged:
        return AccountSettingsChanged(
            **env(),
            user_id="alice",
            settings=AccountSettings(risk_template=RiskTemplate.CONSERVATIVE, email=email),
        )

    state.apply(settings("alice@example.com"))
    assert state.email_of(ACCOUNT) == "alice@example.com"
    state.apply(settings(None))
    assert state.email_of(ACCOUNT) is None


def broker(symbol: str, quantity: int, kind: str = "Equity Option") -> BrokerPosition:
    return BrokerPosition(
        account_number=ACCOUNT,
        symbol=symbol,
        underlying="SPY",
        instrument_type=kind,
        quantity=quantity,
        average_open_price=D(1),
        close_price=D(1),
        multiplier=D(100),
    )


def test_broker_holdings_count_options_only() -> None:
    held = broker_holdings(
        [broker(SHORT_PUT, -2), broker(LONG_PUT, 2), broker("SPY", 100, "Equity")]
    )
    assert held == {SHORT_PUT: -2, LONG_PUT: 2}


def test_app_positions_expect_the_open_spreads_and_leave_out_inactive_ones() -> None:
    state = fold(opened())
    (expected,) = app_positions(state.book(ACCOUNT))
    assert expected == AppPosition.of_spreads(POSITION, "SPY", trident())
    state.apply(
        PositionNeedsAttention(
            **env(),
            position_id=POSITION,
            underlying="SPY",
            reason=AttentionReason.GONE_AT_BROKER,
            message="gone",
            app_managed=False,
            active=False,
        )
    )
    assert app_positions(state.book(ACCOUNT)) == []


def finding(held: int) -> SyncFinding:
    return SyncFinding(
        position_id=POSITION,
        underlying="SPY",
        reason=AttentionReason.BROKER_MISMATCH,
        message="differs",
        active=True,
        held_legs=(HeldLeg(symbol=SHORT_PUT, quantity=held),),
    )


def test_only_a_finding_read_twice_the_same_is_confirmed() -> None:
    assert confirmed([finding(-1)], [finding(-1)]) == [finding(-1)]
    assert confirmed([finding(-1)], [finding(-2)]) == []  # still moving: wait for the next
    assert confirmed([], [finding(-1)]) == []


def test_the_view_shows_the_working_exit_and_the_flag() -> None:
    order = uuid4()
    state = fold(opened(), placed(order))
    position = state.position(ACCOUNT, POSITION)
    assert position is not None
    view = position_view(state, position)
    ps1 = next(s for s in view.spreads if s.spread.kind is PS1)
    assert (ps1.exit_order_id, ps1.exit_purpose) == (order, OrderPurpose.PROFIT_TARGET)
    assert view.opened_at == NOW
    assert view.needs_attention is False
    # A partly filled opening never opened: its view starts at the flag.
    flagged = uuid4()
    state.apply(
        PositionNeedsAttention(
            **env(occurred_at=NOW + timedelta(minutes=1)),
            position_id=flagged,
            underlying="SPY",
            reason=AttentionReason.PARTIAL_FILL,
            message="partly filled",
            app_managed=False,
            held_legs=(HeldLeg(symbol=SHORT_PUT, quantity=-1),),
        )
    )
    record = state.position(ACCOUNT, flagged)
    assert record is not None
    partial = position_view(state, record)
    assert partial.opened_at == NOW + timedelta(minutes=1)
    assert partial.held_legs == (HeldLeg(symbol=SHORT_PUT, quantity=-1),)
    assert partial.app_managed is False
