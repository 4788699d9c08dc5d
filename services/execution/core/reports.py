"""Broker reports -> lifecycle facts of one order (pure).

A report is what the broker says about an order now (a place answer, a lookup by client
tag, an account-streamer notification, a reconciliation poll). `lifecycle_facts`
compares it with what the events so far recorded and returns only what is new, in the
order the events must be published, so the same report seen twice (stream and REST,
before and after a restart) adds nothing: never lose, never repeat.

Fill reports are cumulative (every fill so far); a fill is new when its broker fill id
is not recorded yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libs.broker.models import BrokerOrder
from libs.contracts.execution import LegFill, OrderStatus


@dataclass(frozen=True, slots=True)
class Accepted:
    """The broker holds the order (OrderAccepted)."""

    broker_order_id: str


@dataclass(frozen=True, slots=True)
class Fills:
    """New fills (OrderPartiallyFilled, or OrderFilled when ``complete``); all fills so far."""

    broker_order_id: str
    fills: tuple[LegFill, ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """The broker refused the order (OrderRejected, ORDER_REJECTED)."""

    broker_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The order was cancelled at the broker (OrderCancelled)."""

    broker_order_id: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Expired:
    """A DAY order ended with the session (OrderExpired)."""

    broker_order_id: str


@dataclass(frozen=True, slots=True)
class Replaced:
    """The broker replaced the order with ``replacement_broker_order_id`` (OrderReplaced)."""

    broker_order_id: str
    replacement_broker_order_id: str | None


Fact = Accepted | Fills | Rejected | Cancelled | Expired | Replaced

_LIVE = (OrderStatus.SUBMITTED, OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED)


def lifecycle_facts(
    status: OrderStatus, recorded_fills: Mapping[str, LegFill], report: BrokerOrder
) -> tuple[Fact, ...]:
    """What ``report`` adds to an order now at ``status`` with ``recorded_fills``.

    Every returned sequence is allowed by `libs.domain.lifecycle` from
    ``status``: an acceptance first (when still SUBMITTED and not refused), then new
    fills, then the terminal fact.
    """
    if status.is_terminal:
        return ()
    broker_id = report.broker_order_id
    facts: list[Fact] = []
    if report.status is OrderStatus.REJECTED:
        reason = report.reject_reason or "rejected by the broker"
        if status is OrderStatus.PARTIALLY_FILLED:
            # A partly filled order cannot be rejected any more; it ended short of full.
            return (Cancelled(broker_id, f"rejected by the broker: {reason}"),)
        return (Rejected(broker_id, reason),)
    if status is OrderStatus.SUBMITTED:
        facts.append(Accepted(broker_id))
    new = [f for f in report.fills if f.broker_fill_id not in recorded_fills]
    merged = (*recorded_fills.values(), *new)
    if report.status is OrderStatus.FILLED and merged:
        facts.append(Fills(broker_id, merged, complete=True))
    elif new:
        facts.append(Fills(broker_id, merged, complete=False))
    if report.status is OrderStatus.CANCELLED:
        facts.append(Cancelled(broker_id))
    elif report.status is OrderStatus.EXPIRED:
        facts.append(Expired(broker_id))
    elif report.status is OrderStatus.REPLACED:
        facts.append(Replaced(broker_id, report.replaced_by_broker_order_id))
    return tuple(facts)


def is_live(report: BrokerOrder) -> bool:
    """The broker order can still fill."""
    return report.status in _LIVE
