"""The strategy's account projection: link, settings, balance, open app-managed positions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from libs.contracts.account import (
    AccountLinked,
    AccountSettings,
    AccountSettingsChanged,
    BalanceUpdated,
    TradingMode,
)
from libs.contracts.base import Underlying
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.positions import (
    AttentionReason,
    CloseReason,
    PositionAttentionCleared,
    PositionClosed,
    PositionNeedsAttention,
    PositionOpened,
    PositionSpread,
    SpreadClosed,
)
from libs.contracts.risk import RiskTemplate
from libs.contracts.strategy import SpreadKind
from libs.contracts.symbols import OccSymbol, OptionType
from services.strategy.accounts import ACCOUNTS, DEFAULT_SETTINGS, AccountBook, OpenSpread

ACCOUNT = "5WT00001"
NOW = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
EXPIRATION = date(2026, 2, 20)
D = Decimal


def env(**kw: object) -> dict[str, object]:
    return {
        "occurred_at": NOW,
        "producer": "test",
        "account_id": ACCOUNT,
        "correlation_id": new_event_id(),
        **kw,
    }


def sym(kind: OptionType, strike: int) -> OccSymbol:
    return OccSymbol.build("QQQ", EXPIRATION, kind, D(strike))


def opened(position_id: UUID, *, calls: bool = True) -> PositionOpened:
    put = {"short_symbol": sym(OptionType.PUT, 592), "long_symbol": sym(OptionType.PUT, 589)}
    spreads = [
        PositionSpread(
            kind=SpreadKind.PUT_SPREAD_1, entry_credit=D("1.40"), profit_target=D("0.40"), **put
        ),
        PositionSpread(
            kind=SpreadKind.PUT_SPREAD_2, entry_credit=D("1.40"), profit_target=D("0.60"), **put
        ),
    ]
    if calls:
        spreads.append(
            PositionSpread(
                kind=SpreadKind.CALL_SPREAD,
                short_symbol=sym(OptionType.CALL, 592),
                long_symbol=sym(OptionType.CALL, 595),
                entry_credit=D("0.70"),
                profit_target=D("0.50"),
            )
        )
    return PositionOpened(
        **env(),
        position_id=position_id,
        suggestion_id=new_event_id(),
        opening_order_id=new_event_id(),
        underlying="QQQ",
        expiration=EXPIRATION,
        width=D(3),
        spreads=tuple(spreads),
        total_entry_credit=sum((s.entry_credit for s in spreads), D(0)),
        max_risk=D("250"),
    )


def balance(bp: str, at: datetime = NOW) -> BalanceUpdated:
    return BalanceUpdated(
        **env(),
        derivative_buying_power=D(bp),
        net_liquidating_value=D("30000"),
        cash_balance=D("30000"),
        broker_updated_at=at,
    )


def fold(*events: Event) -> AccountBook:
    return ACCOUNTS.fold(events)


def test_an_unknown_account_has_the_default_settings_and_nothing_else() -> None:
    state = fold().get(ACCOUNT)
    assert state.settings == DEFAULT_SETTINGS
    assert state.settings.risk_template is RiskTemplate.CONSERVATIVE
    assert not state.settings.automation_enabled
    assert state.settings.underlyings == (Underlying.QQQ, Underlying.SPY)
    assert not state.settings_known
    assert state.balance is None
    assert state.managed_positions == ()


def test_link_and_settings_are_kept() -> None:
    settings = AccountSettings(
        risk_template=RiskTemplate.MODERATE,
        automation_enabled=True,
        automation_offset_cents=3,
        underlyings=(Underlying.SPY,),
    )
    state = fold(
        AccountLinked(**env(), user_id="alice", mode=TradingMode.PAPER),
        AccountSettingsChanged(**env(), user_id="alice", settings=settings),
    ).get(ACCOUNT)
    assert (state.user_id, state.mode) == ("alice", TradingMode.PAPER)
    assert state.settings == settings
    assert state.settings_known


def test_the_latest_balance_by_broker_time_wins() -> None:
    later = NOW + timedelta(seconds=30)
    state = fold(balance("20000", later), balance("10000", NOW)).get(ACCOUNT)
    assert state.balance is not None
    assert state.balance.derivative_buying_power == D("20000")
    assert state.balance.broker_updated_at == later
    state = fold(balance("10000", NOW), balance("20000", later)).get(ACCOUNT)
    assert state.balance is not None
    assert state.balance.derivative_buying_power == D("20000")


def test_an_opened_position_lists_its_spreads() -> None:
    pid = new_event_id()
    (position,) = fold(opened(pid)).get(ACCOUNT).managed_positions
    assert (position.underlying, position.expiration, position.max_risk) == (
        "QQQ",
        EXPIRATION,
        D("250"),
    )
    assert dict(position.spreads) == {
        SpreadKind.PUT_SPREAD_1: OpenSpread("put", D(592), D(589), 1),
        SpreadKind.PUT_SPREAD_2: OpenSpread("put", D(592), D(589), 1),
        SpreadKind.CALL_SPREAD: OpenSpread("call", D(592), D(595), 1),
    }


def test_a_closed_spread_and_a_closed_position_are_removed() -> None:
    pid = new_event_id()
    closed_spread = SpreadClosed(
        **env(),
        position_id=pid,
        spread_kind=SpreadKind.CALL_SPREAD,
        reason=CloseReason.PROFIT_TARGET,
        realized_pnl=D("35"),
    )
    (position,) = fold(opened(pid), closed_spread).get(ACCOUNT).managed_positions
    assert set(position.spreads) == {SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2}
    closed = PositionClosed(**env(), position_id=pid, realized_pnl=D("100"))
    assert fold(opened(pid), closed_spread, closed).get(ACCOUNT).managed_positions == ()


def test_a_position_flagged_not_app_managed_is_left_out_until_cleared() -> None:
    pid = new_event_id()
    flagged = PositionNeedsAttention(
        **env(),
        position_id=pid,
        underlying="QQQ",
        reason=AttentionReason.PARTIAL_FILL,
        message="partly filled",
        app_managed=False,
    )
    assert fold(opened(pid), flagged).get(ACCOUNT).managed_positions == ()
    cleared = PositionAttentionCleared(**env(), position_id=pid, message="filled")
    assert len(fold(flagged, cleared, opened(pid)).get(ACCOUNT).managed_positions) == 1


def test_a_flag_that_keeps_the_position_app_managed_changes_nothing() -> None:
    pid = new_event_id()
    flagged = PositionNeedsAttention(
        **env(),
        position_id=pid,
        underlying="QQQ",
        reason=AttentionReason.ORDER_FAILED,
        message="exit rejected",
        app_managed=True,
    )
    assert len(fold(opened(pid), flagged).get(ACCOUNT).managed_positions) == 1


def test_redelivered_events_change_nothing() -> None:
    pid = new_event_id()
    opening = opened(pid)
    closing = PositionClosed(**env(), position_id=pid, realized_pnl=D("100"))
    book = fold(opening, closing)
    assert ACCOUNTS.apply(book, opening) is book  # a late duplicate does not reopen it
    assert book.get(ACCOUNT).managed_positions == ()
    update = balance("20000")
    once = fold(update)
    assert ACCOUNTS.apply(once, update) is once


def test_accounts_are_kept_apart() -> None:
    other = BalanceUpdated(
        **{**env(), "account_id": "5WT00002"},
        derivative_buying_power=D("5"),
        net_liquidating_value=D("5"),
        cash_balance=D("5"),
        broker_updated_at=NOW,
    )
    book = fold(balance("20000"), other)
    first, second = book.get(ACCOUNT).balance, book.get("5WT00002").balance
    assert first is not None
    assert second is not None
    assert (first.derivative_buying_power, second.derivative_buying_power) == (D("20000"), D(5))
