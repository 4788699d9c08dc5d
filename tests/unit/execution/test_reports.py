"""Broker reports add only what is new, in an order the lifecycle table allows."""

from __future__ import annotations

from libs.contracts.execution import OrderStatus
from services.execution.core import (
    Accepted,
    Cancelled,
    Expired,
    Fills,
    Rejected,
    Replaced,
    lifecycle_facts,
)
from tests.unit.execution.builders import report, trident_fills

FILLS = trident_fills()


def test_a_live_order_is_accepted_once() -> None:
    assert lifecycle_facts(OrderStatus.SUBMITTED, {}, report(OrderStatus.WORKING)) == (
        Accepted("101"),
    )
    assert lifecycle_facts(OrderStatus.WORKING, {}, report(OrderStatus.WORKING)) == ()


def test_a_fill_in_the_place_answer_is_accepted_then_filled() -> None:
    facts = lifecycle_facts(OrderStatus.SUBMITTED, {}, report(OrderStatus.FILLED, FILLS))
    assert facts == (Accepted("101"), Fills("101", FILLS, complete=True))


def test_fills_already_recorded_are_not_reported_again() -> None:
    recorded = {f.broker_fill_id: f for f in FILLS[:2]}
    partial = report(OrderStatus.PARTIALLY_FILLED, FILLS[:2])
    assert lifecycle_facts(OrderStatus.PARTIALLY_FILLED, recorded, partial) == ()
    done = lifecycle_facts(
        OrderStatus.PARTIALLY_FILLED, recorded, report(OrderStatus.FILLED, FILLS)
    )
    assert done == (Fills("101", FILLS, complete=True),)


def test_a_first_partial_fill_is_reported_with_every_fill_so_far() -> None:
    facts = lifecycle_facts(
        OrderStatus.WORKING, {}, report(OrderStatus.PARTIALLY_FILLED, FILLS[:2])
    )
    assert facts == (Fills("101", FILLS[:2], complete=False),)


def test_a_rejection_carries_the_brokers_reason() -> None:
    facts = lifecycle_facts(
        OrderStatus.SUBMITTED, {}, report(OrderStatus.REJECTED, reject_reason="no margin")
    )
    assert facts == (Rejected("101", "no margin"),)


def test_a_partly_filled_order_that_ends_is_cancelled_or_expired_after_its_fills() -> None:
    recorded = {f.broker_fill_id: f for f in FILLS[:1]}
    cancelled = lifecycle_facts(
        OrderStatus.PARTIALLY_FILLED, recorded, report(OrderStatus.CANCELLED, FILLS[:2])
    )
    assert cancelled == (Fills("101", FILLS[:2], complete=False), Cancelled("101"))
    expired = lifecycle_facts(OrderStatus.WORKING, {}, report(OrderStatus.EXPIRED))
    assert expired == (Expired("101"),)


def test_a_replaced_order_names_its_replacement() -> None:
    facts = lifecycle_facts(OrderStatus.WORKING, {}, report(OrderStatus.REPLACED, replaced_by="7"))
    assert facts == (Replaced("101", "7"),)


def test_nothing_follows_a_terminal_status() -> None:
    for status in OrderStatus:
        if status.is_terminal:
            assert lifecycle_facts(status, {}, report(OrderStatus.FILLED, FILLS)) == ()
