"""The risk service's pure account fold and its release decision."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from libs.contracts.account import AccountSettings, AccountSettingsChanged, BalanceUpdated
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import CancelReason, OrderAction, OrderRejected
from libs.contracts.risk import ReleaseReason, RiskReleased, RiskTemplate
from services.risk.accounts import (
    DEFAULT_TEMPLATE,
    RiskBook,
    apply,
    release_due,
)
from services.risk.projection import ReservationStatus
from tests.integration.replay.scenario import MAX_RISK, PUT_592, Script

ACCOUNT = "5WT00001"
D = Decimal


def fold(*events: Event, book: RiskBook | None = None) -> RiskBook:
    current = book or RiskBook()
    for event in events:
        current = apply(current, event)
    return current


def settings(s: Script, template: RiskTemplate) -> AccountSettingsChanged:
    return AccountSettingsChanged(
        **s.env("gateway"), user_id="alice", settings=AccountSettings(risk_template=template)
    )


def balance(s: Script, buying_power: str, *, at_offset: int = 0) -> BalanceUpdated:
    env = s.env("market_data")
    return BalanceUpdated(
        **env,
        derivative_buying_power=D(buying_power),
        net_liquidating_value=D(buying_power),
        cash_balance=D(buying_power),
        broker_updated_at=env["occurred_at"] + timedelta(seconds=at_offset),
    )


def reserved_world(s: Script) -> tuple[RiskBook, UUID, UUID, UUID]:
    """A suggestion reserved and its opening order submitted."""
    suggestion_id, reservation_id, order_id = new_event_id(), new_event_id(), new_event_id()
    book = fold(
        balance(s, "20000"),
        s.generated(suggestion_id),
        s.reserved(reservation_id, suggestion_id),
        s.open_submitted(order_id, suggestion_id, reservation_id),
    )
    return book, suggestion_id, reservation_id, order_id


def test_an_unknown_account_is_conservative_without_a_balance() -> None:
    account = RiskBook().get(ACCOUNT)
    assert account.template is DEFAULT_TEMPLATE is RiskTemplate.CONSERVATIVE
    assert account.risk() is None


def test_settings_and_the_newest_balance_make_the_account_risk() -> None:
    s = Script(ACCOUNT)
    newer = balance(s, "30000", at_offset=600)
    older = balance(s, "10000")  # the broker's older figure, delivered late
    book = fold(settings(s, RiskTemplate.AGGRESSIVE), newer, older)
    risk = book.get(ACCOUNT).risk()
    assert risk is not None
    assert (risk.template, risk.buying_power) == (RiskTemplate.AGGRESSIVE, D("30000"))


def test_open_positions_count_in_tradeable_capital() -> None:
    s = Script(ACCOUNT)
    book = fold(
        balance(s, "20000"), s.position_opened(new_event_id(), new_event_id(), new_event_id())
    )
    risk = book.get(ACCOUNT).risk()
    assert risk is not None
    assert risk.tradeable_capital == D("20000") + MAX_RISK


def test_suggestions_wait_for_their_approval_verdict() -> None:
    s = Script(ACCOUNT)
    a, b, c = new_event_id(), new_event_id(), new_event_id()
    book = fold(s.generated(a), s.generated(b), s.generated(c))
    assert set(book.get(ACCOUNT).suggestions) == {a, b, c}
    book = fold(s.reserved(new_event_id(), a), s.reservation_failed(b), s.rejected(c), book=book)
    account = book.get(ACCOUNT)
    assert account.suggestions == {}
    assert account.decided == {a: True, b: False}
    # A redelivered generation of a decided suggestion does not bring it back.
    assert fold(s.generated(a), book=book).get(ACCOUNT).suggestions == {}


def test_checks_are_remembered_once() -> None:
    s = Script(ACCOUNT)
    a, b = new_event_id(), new_event_id()
    book = fold(s.risk_passed(a), s.risk_failed(b), s.risk_failed(a))
    assert book.get(ACCOUNT).checked == {a: True, b: False}


def test_own_events_folded_twice_count_once() -> None:
    s = Script(ACCOUNT)
    suggestion_id = new_event_id()
    reserved = s.reserved(new_event_id(), suggestion_id)
    once = fold(balance(s, "20000"), s.generated(suggestion_id), reserved)
    twice = fold(reserved, book=once)
    assert twice == once
    account = twice.get(ACCOUNT)
    assert account.usage.reserved_risk == MAX_RISK
    assert account.pending() == {suggestion_id: MAX_RISK}


def test_pending_is_keyed_by_suggestion() -> None:
    s = Script(ACCOUNT)
    a, b = new_event_id(), new_event_id()
    book = fold(s.reserved(new_event_id(), a), s.reserved(new_event_id(), b, limit="4.00"))
    assert book.get(ACCOUNT).pending() == {a: MAX_RISK, b: D("200.00")}


def test_market_wide_and_other_accounts_events_leave_the_account_alone() -> None:
    s, other = Script(ACCOUNT), Script("5WT00002")
    book = fold(balance(s, "20000"))
    after = fold(balance(other, "1"), book=book)
    assert after.get(ACCOUNT) == book.get(ACCOUNT)


# --- releases ---------------------------------------------------------------------------


def test_a_cancelled_opening_order_releases_its_reservation() -> None:
    s = Script(ACCOUNT)
    book, _, reservation_id, order_id = reserved_world(s)
    cancelled = s.cancelled(order_id, CancelReason.USER_REQUESTED)
    due = release_due(fold(cancelled, book=book).get(ACCOUNT), cancelled)
    assert due is not None
    assert (due.reservation.reservation_id, due.reason, due.order_id) == (
        reservation_id,
        ReleaseReason.CANCELLED,
        order_id,
    )
    assert due.reservation.amount == MAX_RISK


def test_expired_rejected_and_failed_orders_release_with_their_reason() -> None:
    s = Script(ACCOUNT)
    book, _, _, order_id = reserved_world(s)
    failed = OrderRejected(
        **s.env("execution"),
        order_id=order_id,
        kind=ErrorKind.BROKER_UNAVAILABLE,
        reason="broker unreachable",
    )
    cases = [
        (s.order_expired(order_id), ReleaseReason.EXPIRED),
        (s.order_rejected(order_id), ReleaseReason.REJECTED),
        (failed, ReleaseReason.FAILED),
    ]
    for event, reason in cases:
        due = release_due(fold(event, book=book).get(ACCOUNT), event)
        assert due is not None
        assert due.reason is reason


def test_a_partly_filled_order_that_ends_releases_as_partially_filled() -> None:
    s = Script(ACCOUNT)
    book, _, _, order_id = reserved_world(s)
    fill = s.fill(PUT_592, OrderAction.SELL_TO_OPEN, D("9.15"))
    expired = s.order_expired(order_id)
    book = fold(s.partially_filled(order_id, (fill,)), expired, book=book)
    due = release_due(book.get(ACCOUNT), expired)
    assert due is not None
    assert due.reason is ReleaseReason.PARTIALLY_FILLED


def test_a_replaced_order_releases_only_when_its_replacement_ends() -> None:
    s = Script(ACCOUNT)
    book, _, reservation_id, order_id = reserved_world(s)
    replacement = new_event_id()
    book = fold(s.replaced(order_id, replacement), book=book)
    old_cancelled = s.cancelled(order_id, CancelReason.SYSTEM)
    assert release_due(fold(old_cancelled, book=book).get(ACCOUNT), old_cancelled) is None
    new_cancelled = s.cancelled(replacement, CancelReason.USER_REQUESTED)
    due = release_due(fold(new_cancelled, book=book).get(ACCOUNT), new_cancelled)
    assert due is not None
    assert (due.reservation.reservation_id, due.order_id) == (reservation_id, replacement)


def test_the_opened_position_releases_as_filled_and_takes_the_risk_over() -> None:
    s = Script(ACCOUNT)
    book, suggestion_id, reservation_id, order_id = reserved_world(s)
    opened = s.position_opened(new_event_id(), suggestion_id, order_id)
    book = fold(opened, book=book)
    account = book.get(ACCOUNT)
    # Counted twice until the release is folded: never less than the truth.
    assert account.usage.used_risk == 2 * MAX_RISK
    due = release_due(account, opened)
    assert due is not None
    assert (due.reason, due.order_id) == (ReleaseReason.FILLED, order_id)
    released = s.released(reservation_id, suggestion_id, ReleaseReason.FILLED, order_id)
    after = fold(released, book=book).get(ACCOUNT)
    assert after.usage.used_risk == MAX_RISK
    assert release_due(after, opened) is None  # a redelivery releases nothing twice


def test_nothing_is_released_twice_or_for_unknown_orders() -> None:
    s = Script(ACCOUNT)
    book, suggestion_id, reservation_id, order_id = reserved_world(s)
    cancelled = s.cancelled(order_id, CancelReason.USER_REQUESTED)
    released = RiskReleased(
        **s.env("risk"),
        reservation_id=reservation_id,
        suggestion_id=suggestion_id,
        amount=MAX_RISK,
        reason=ReleaseReason.CANCELLED,
        order_id=order_id,
    )
    book = fold(cancelled, released, book=book)
    account = book.get(ACCOUNT)
    assert account.usage.reservations[reservation_id].status is ReservationStatus.RELEASED
    assert release_due(account, cancelled) is None
    stranger = s.cancelled(new_event_id(), CancelReason.BROKER)
    assert release_due(fold(stranger, book=book).get(ACCOUNT), stranger) is None


def test_a_suggestion_ending_before_any_order_releases_its_reservation() -> None:
    s = Script(ACCOUNT)
    suggestion_id, reservation_id = new_event_id(), new_event_id()
    generated = s.generated(suggestion_id)
    book = fold(generated, s.reserved(reservation_id, suggestion_id))
    expired = s.expired(suggestion_id, generated.suggestion.created_at)
    due = release_due(fold(expired, book=book).get(ACCOUNT), expired)
    assert due is not None
    assert (due.reason, due.order_id) == (ReleaseReason.EXPIRED, None)
    rejected = s.rejected(suggestion_id)
    due = release_due(fold(rejected, book=book).get(ACCOUNT), rejected)
    assert due is not None
    assert due.reason is ReleaseReason.CANCELLED
    # Once an opening order exists, its own end releases the reservation, not the suggestion's.
    with_order = fold(s.open_submitted(new_event_id(), suggestion_id, reservation_id), book=book)
    assert release_due(fold(expired, book=with_order).get(ACCOUNT), expired) is None
