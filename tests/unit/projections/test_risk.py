"""Risk usage: pending reservations + max risk of open positions (DOMAIN.md 4)."""

from __future__ import annotations

from decimal import Decimal

from libs.contracts.envelope import new_event_id
from libs.contracts.risk import ReleaseReason
from services.risk.projection import RISK, ReservationStatus, RiskUsage, apply
from tests.integration.replay.scenario import MAX_RISK, Script

ACCOUNT = "5WT00001"


def test_a_reservation_is_used_risk_until_released() -> None:
    s = Script(ACCOUNT)
    suggestion_id, reservation_id = new_event_id(), new_event_id()
    usage = apply(RiskUsage(), s.reserved(reservation_id, suggestion_id))
    assert usage.reserved_risk == MAX_RISK
    assert usage.used_risk == Decimal(230)
    released = apply(
        usage, s.released(reservation_id, suggestion_id, ReleaseReason.REJECTED, new_event_id())
    )
    assert released.reserved_risk == 0
    assert released.used_risk == 0
    reservation = released.reservations[reservation_id]
    assert reservation.status is ReservationStatus.RELEASED
    assert reservation.release_reason is ReleaseReason.REJECTED


def test_a_filled_order_hands_its_risk_over_to_the_position() -> None:
    s = Script(ACCOUNT)
    suggestion_id, reservation_id, order_id, position_id = (new_event_id() for _ in range(4))
    usage = RISK.fold(
        [
            s.reserved(reservation_id, suggestion_id),
            s.released(reservation_id, suggestion_id, ReleaseReason.FILLED, order_id),
            s.position_opened(position_id, suggestion_id, order_id),
        ]
    )
    assert (usage.reserved_risk, usage.open_positions_max_risk) == (Decimal(0), MAX_RISK)
    assert usage.used_risk == MAX_RISK
    assert usage.open_positions == 1


def test_used_risk_adds_reservations_and_positions() -> None:
    s = Script(ACCOUNT)
    usage = RISK.fold(
        [
            s.position_opened(new_event_id(), new_event_id(), new_event_id()),
            s.reserved(new_event_id(), new_event_id(), limit="3.65"),
        ]
    )
    # 230 for the open trident + (600 - 365) reserved for the approved one.
    assert usage.used_risk == Decimal(465)


def test_a_closed_position_uses_no_risk() -> None:
    s = Script(ACCOUNT)
    position_id = new_event_id()
    usage = RISK.fold(
        [
            s.position_opened(position_id, new_event_id(), new_event_id()),
            s.position_closed(position_id, Decimal(-74)),
        ]
    )
    assert usage.used_risk == 0
    assert usage.open_positions == 0
    assert not usage.positions[position_id].open


def test_a_failed_reservation_for_the_suggestion_ends_a_pending_one() -> None:
    s = Script(ACCOUNT)
    suggestion_id, reservation_id = new_event_id(), new_event_id()
    failed = s.reservation_failed(suggestion_id)
    usage = RISK.fold([s.reserved(reservation_id, suggestion_id), failed])
    assert usage.reserved_risk == 0
    assert usage.reservations[reservation_id].status is ReservationStatus.FAILED
    assert usage.failures[failed.event_id].suggestion_id == suggestion_id


def test_a_failed_reservation_alone_uses_no_risk() -> None:
    s = Script(ACCOUNT)
    usage = apply(RiskUsage(), s.reservation_failed(new_event_id()))
    assert usage.used_risk == 0
    assert len(usage.failures) == 1


def test_releasing_twice_is_an_anomaly_and_counts_once() -> None:
    s = Script(ACCOUNT)
    suggestion_id, reservation_id, order_id = new_event_id(), new_event_id(), new_event_id()
    second = s.released(reservation_id, suggestion_id, ReleaseReason.CANCELLED, order_id)
    usage = RISK.fold(
        [
            s.reserved(reservation_id, suggestion_id),
            s.released(reservation_id, suggestion_id, ReleaseReason.FILLED, order_id),
            second,
        ]
    )
    reservation = usage.reservations[reservation_id]
    assert reservation.release_reason is ReleaseReason.FILLED
    assert [a.event_id for a in reservation.anomalies] == [second.event_id]
    assert apply(usage, second) is usage


def test_releasing_an_unknown_reservation_is_kept_as_an_anomaly() -> None:
    s = Script(ACCOUNT)
    stray = s.released(new_event_id(), new_event_id(), ReleaseReason.FAILED, new_event_id())
    usage = apply(RiskUsage(), stray)
    assert usage.used_risk == 0
    assert [a.event_id for a in usage.anomalies] == [stray.event_id]


def test_redelivered_events_change_nothing() -> None:
    s = Script(ACCOUNT)
    suggestion_id, reservation_id, order_id, position_id = (new_event_id() for _ in range(4))
    events = [
        s.reserved(reservation_id, suggestion_id),
        s.released(reservation_id, suggestion_id, ReleaseReason.FILLED, order_id),
        s.position_opened(position_id, suggestion_id, order_id),
        s.reservation_failed(new_event_id()),
        s.position_closed(position_id, Decimal(66)),
    ]
    usage = RISK.fold(events)
    for event in events:
        assert apply(usage, event) is usage
