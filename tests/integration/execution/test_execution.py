"""Execution on real NATS + Postgres against the broker simulator (issue 11 acceptance)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from uuid import uuid4

import pytest

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.contracts.commands import (
    CancelOrder,
    GetOrder,
    GetOrders,
    OrderListReply,
    OrderReply,
    PlaceExitOrder,
    ReplaceOrderPrice,
)
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import (
    CancelReason,
    OrderAccepted,
    OrderAction,
    OrderCancelled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    PositionNeedsAttention,
    PositionOpened,
)
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import TradingResumed, TradingSuspended
from libs.domain.orders import opening_order_id
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.servers import ServerProcess
from services.execution.core import position_id_for
from services.simulator.server import SimulatorServer
from tests.integration.execution.harness import (
    ACCOUNT,
    CREDENTIALS,
    Events,
    World,
    broker_settings,
    control,
)
from tests.simulator_fixtures import SIM_START

D = Decimal
TARGETS = {
    SpreadKind.PUT_SPREAD_1: D("0.40"),
    SpreadKind.PUT_SPREAD_2: D("0.60"),
    SpreadKind.CALL_SPREAD: D("0.50"),
}


@pytest.fixture
async def world(
    nats_factory: Callable[[], ServerProcess], database_url: str, simulator: SimulatorServer
) -> AsyncIterator[World]:
    nats = nats_factory()
    bus = await Bus.connect(nats.url, "test")
    events = Events()
    await events.start(bus)
    async with BrokerAdapter(
        broker_settings(simulator), StaticCredentials({ACCOUNT: CREDENTIALS})
    ) as adapter:
        w = World(
            clock=ManualClock(SIM_START),
            bus=bus,
            events=events,
            simulator=simulator,
            adapter=adapter,
            nats_url=nats.url,
            database_url=database_url,
            durable=f"execution-{uuid4().hex[:8]}",
        )
        try:
            yield w
            check_invariants(w)
        finally:
            await w.stop()
            await bus.close()


def check_invariants(world: World) -> None:
    """One OrderSubmitted per order id, and nothing the order table refused."""
    submitted = Counter(e.order_id for e in world.events.of(OrderSubmitted))
    assert all(n == 1 for n in submitted.values()), submitted
    if world.service is not None:
        for book in world.service.state.books.values():
            assert book.anomalies == ()
            assert all(order.anomalies == () for order in book.orders.values())


def fill_price(filled: OrderFilled, action: OrderAction, put: bool) -> Decimal:
    (price,) = {
        f.fill_price
        for f in filled.legs
        if f.action is action and (f.symbol.contract.option_type.value == "PUT") is put
    }
    return price


async def test_happy_path_order_fill_position_and_three_profit_targets(world: World) -> None:
    await world.start()
    approval = await world.approve()
    order_id = opening_order_id(approval.reserved.reservation_id)

    (submitted,) = await world.events.wait_for(OrderSubmitted, order_id=order_id)
    (filled,) = await world.events.wait_for(OrderFilled, order_id=order_id)
    (opened,) = await world.events.wait_for(PositionOpened)
    exits = await world.events.wait_for(ExitOrderPlaced, count=3)
    await world.events.wait_for(OrderAccepted, count=4)

    # The opening order: LIMIT, DAY, 2:2:1:1, the approved credit per ratio unit.
    assert submitted.purpose is OrderPurpose.OPEN
    assert submitted.time_in_force is TimeInForce.DAY
    assert [leg.quantity for leg in submitted.legs] == [2, 2, 1, 1]
    assert submitted.limit_price == approval.reserved.limit_credit
    assert submitted.reservation_id == approval.reserved.reservation_id

    # Entry credits from the per-leg fill prices; max risk from them.
    put_credit = fill_price(filled, OrderAction.SELL_TO_OPEN, True) - fill_price(
        filled, OrderAction.BUY_TO_OPEN, True
    )
    call_credit = fill_price(filled, OrderAction.SELL_TO_OPEN, False) - fill_price(
        filled, OrderAction.BUY_TO_OPEN, False
    )
    assert opened.position_id == position_id_for(order_id)
    credits = {s.kind: s.entry_credit for s in opened.spreads}
    assert credits == {
        SpreadKind.PUT_SPREAD_1: put_credit,
        SpreadKind.PUT_SPREAD_2: put_credit,
        SpreadKind.CALL_SPREAD: call_credit,
    }
    assert opened.total_entry_credit == 2 * put_credit + call_credit
    assert opened.max_risk == 2 * 5 * 100 - opened.total_entry_credit * 100

    # Three GTC closing orders at -(credit x (1 - target)), debits rounded up.
    by_kind = {e.spread_kind: e for e in exits}
    assert set(by_kind) == set(TARGETS)
    for kind, target in TARGETS.items():
        decided = by_kind[kind]
        expected = -(credits[kind] * (1 - target))
        assert decided.limit_price == expected.quantize(D("0.01"), rounding="ROUND_FLOOR")
        assert decided.limit_price < 0
        assert decided.purpose is OrderPurpose.PROFIT_TARGET
        assert decided.time_in_force is TimeInForce.GTC
        assert {leg.action for leg in decided.legs} == {
            OrderAction.BUY_TO_CLOSE,
            OrderAction.SELL_TO_CLOSE,
        }
        (exit_submitted,) = world.events.of(OrderSubmitted, order_id=decided.order_id)
        assert exit_submitted.limit_price == decided.limit_price
        assert exit_submitted.causation_id == decided.event_id
        assert decided.causation_id == opened.event_id

    # Causal chain: reservation -> submitted -> accepted -> filled -> position.
    (accepted,) = world.events.of(OrderAccepted, order_id=order_id)
    assert submitted.causation_id == approval.reserved.event_id
    assert accepted.causation_id == submitted.event_id
    assert filled.causation_id == accepted.event_id
    assert opened.causation_id == filled.event_id
    chain = {submitted, accepted, filled, opened, *exits}
    assert {e.correlation_id for e in chain} == {approval.reserved.correlation_id}

    # At the broker: the filled opening and three live GTC exits, one order each.
    orders = await world.broker_orders()
    assert len(orders) == 4
    assert sorted(o["status"] for o in orders) == ["Filled", "Live", "Live", "Live"]
    assert all(o["order-type"] == "Limit" for o in orders)


async def test_outside_market_hours_the_order_is_refused_market_closed(world: World) -> None:
    world.clock.set(SIM_START.replace(hour=17))
    await world.start()
    approval = await world.approve()
    order_id = opening_order_id(approval.reserved.reservation_id)
    (rejected,) = await world.events.wait_for(OrderRejected, order_id=order_id)
    assert rejected.kind is ErrorKind.MARKET_CLOSED
    assert world.events.of(OrderSubmitted, order_id=order_id)
    assert await world.broker_orders() == []


async def test_a_timeout_after_the_broker_accepted_leaves_exactly_one_live_order(
    world: World,
) -> None:
    world.timeout = 1.0  # the broker holds its answer 2.5 s: the request times out
    await world.start()
    suggestion_limit = D("40.00")  # far above the mid: the order rests, live
    approval = await world.prepare(limit=suggestion_limit)
    await world.fault("timeout", seconds=2.5)
    await world.publish(approval)
    order_id = opening_order_id(approval.reserved.reservation_id)
    (accepted,) = await world.events.wait_for(OrderAccepted, order_id=order_id)
    tag = world.events.of(OrderSubmitted, order_id=order_id)[0].client_tag
    orders = await world.broker_orders(tag)
    assert [(o["status"], str(o["id"])) for o in orders] == [("Live", accepted.broker_order_id)]
    assert not world.events.of(OrderRejected, order_id=order_id)
    await asyncio.sleep(1.6)  # past the held answer (sent to a request that gave up)
    assert len(await world.broker_orders(tag)) == 1
    assert len(world.events.of(OrderAccepted, order_id=order_id)) == 1


async def test_a_partial_fill_flags_the_position_for_attention(world: World) -> None:
    await world.start()
    approval = await world.prepare()
    await world.fault("partial")
    await world.publish(approval)
    order_id = opening_order_id(approval.reserved.reservation_id)
    (partial,) = await world.events.wait_for(OrderPartiallyFilled, order_id=order_id)
    (flag,) = await world.events.wait_for(PositionNeedsAttention)
    assert flag.reason is AttentionReason.PARTIAL_FILL
    assert flag.position_id == position_id_for(order_id)
    assert flag.order_id == order_id
    assert not flag.app_managed
    assert flag.causation_id == partial.event_id
    held = {leg.symbol: leg.quantity for leg in flag.held_legs}
    assert sorted(held.values()) == [-1, 1]  # one of the two put spreads filled
    assert not world.events.of(PositionOpened)
    assert world.service is not None
    assert world.service.state.order(order_id).status is OrderStatus.PARTIALLY_FILLED  # type: ignore[union-attr]


async def test_a_broker_rejection_is_recorded_with_its_reason(world: World) -> None:
    await world.start()
    approval = await world.prepare()
    await world.fault("reject", reason="Exchange closed for this instrument")
    await world.publish(approval)
    order_id = opening_order_id(approval.reserved.reservation_id)
    (rejected,) = await world.events.wait_for(OrderRejected, order_id=order_id)
    assert rejected.kind is ErrorKind.ORDER_REJECTED
    assert rejected.reason == "Exchange closed for this instrument"
    assert rejected.broker_order_id is not None
    assert not world.events.of(PositionOpened)


async def test_a_401_mid_flow_refreshes_the_session_and_succeeds(world: World) -> None:
    await world.start()
    approval = await world.prepare()
    await control(world.simulator, "POST", "/sim/tokens/expire", {})
    await world.fault("unauthorized", count=2)  # the adapter's own refresh is not enough
    await world.publish(approval)
    order_id = opening_order_id(approval.reserved.reservation_id)
    await world.events.wait_for(OrderFilled, order_id=order_id)
    await world.events.wait_for(PositionOpened)
    tag = world.events.of(OrderSubmitted, order_id=order_id)[0].client_tag
    assert len(await world.broker_orders(tag)) == 1
    assert not world.events.of(OrderRejected)


async def test_broker_down_suspends_trading_and_resumes_when_it_answers(world: World) -> None:
    await world.start()
    sim = world.simulator
    port = sim.port
    await world.approve(limit=D("40.00"))  # rests live; the account feed is up
    await world.events.wait_for(OrderAccepted)
    second = await world.prepare(limit=D("40.00"))
    # The broker goes away (the simulator's state is kept for its return).
    assert sim._server is not None
    assert sim._thread is not None
    assert sim._socket is not None
    sim._server.should_exit = True
    sim._thread.join(timeout=10)
    sim._socket.close()
    await world.publish(second)
    order_id = opening_order_id(second.reserved.reservation_id)
    (failed,) = await world.events.wait_for(OrderRejected, order_id=order_id)
    assert failed.kind is ErrorKind.BROKER_UNAVAILABLE
    (suspended,) = await world.events.wait_for(TradingSuspended)
    assert suspended.reason is ErrorKind.BROKER_UNAVAILABLE
    # Back on the same port: the reconciliation probe resumes trading.
    sim._requested_port = port
    sim.start()
    await world.events.wait_for(TradingResumed, timeout=15)
    assert len(world.events.of(TradingSuspended)) == 1
    assert len(await world.broker_orders()) == 1  # only the first, live order


async def test_the_monitors_commands_reprice_supersede_and_cancel_exits(world: World) -> None:
    service = await world.start()
    approval = await world.approve()
    (opened,) = await world.events.wait_for(PositionOpened)
    await world.events.wait_for(OrderAccepted, count=4)
    targets = {e.spread_kind: e for e in world.events.of(ExitOrderPlaced)}
    base = {"account_id": ACCOUNT, "requested_by": None}

    listed = await world.bus.request(GetOrders(**base), OrderListReply)
    assert len(listed.orders) == 3  # open only: the three targets
    opening = await world.bus.request(
        GetOrder(**base, order_id=opening_order_id(approval.reserved.reservation_id)), OrderReply
    )
    assert opening.order.status is OrderStatus.FILLED

    # Re-price the 40 % target: the broker replaces it; the old order ends REPLACED.
    put1 = targets[SpreadKind.PUT_SPREAD_1]
    replacement_id = uuid4()
    reply = await world.bus.request(
        ReplaceOrderPrice(
            **base,
            order_id=put1.order_id,
            replacement_order_id=replacement_id,
            limit_price=put1.limit_price - D("0.05"),
        ),
        OrderReply,
    )
    assert reply.order.order_id == replacement_id
    (replaced,) = await world.events.wait_for(OrderReplaced, order_id=put1.order_id)
    assert replaced.replacement_order_id == replacement_id
    (accepted,) = await world.events.wait_for(OrderAccepted, order_id=replacement_id)

    # A stop loss supersedes the 60 % target: cancelled (STOP_LOSS), then the exit placed.
    put2 = targets[SpreadKind.PUT_SPREAD_2]
    stop_id = uuid4()
    await world.bus.request(
        PlaceExitOrder(
            **base,
            position_id=opened.position_id,
            spread_kind=SpreadKind.PUT_SPREAD_2,
            order_id=stop_id,
            purpose=OrderPurpose.STOP_LOSS,
            legs=put2.legs,
            limit_price=D("-9.995"),
            replaces_order_id=put2.order_id,
            reason="closing cost >= 2 x entry credit",
        ),
        OrderReply,
    )
    (cancelled,) = await world.events.wait_for(OrderCancelled, order_id=put2.order_id)
    assert cancelled.reason is CancelReason.STOP_LOSS
    (stop,) = await world.events.wait_for(OrderSubmitted, order_id=stop_id)
    assert stop.limit_price == D("-10.00")  # the debit rounded up
    await world.events.wait_for(OrderFilled, order_id=stop_id)  # far beyond the natural

    # The user cancels the call spread's target.
    call = targets[SpreadKind.CALL_SPREAD]
    reply = await world.bus.request(CancelOrder(**base, order_id=call.order_id), OrderReply)
    assert reply.order.status is OrderStatus.CANCELLED
    (user,) = world.events.of(OrderCancelled, order_id=call.order_id)
    assert user.reason is CancelReason.USER_REQUESTED

    statuses = {str(o["id"]): o["status"] for o in await world.broker_orders()}
    assert statuses[accepted.broker_order_id] == "Live"
    assert sorted(statuses.values()) == [
        "Cancelled",
        "Cancelled",
        "Cancelled",
        "Filled",
        "Filled",
        "Live",
    ]
    assert service.state.order(stop_id) is not None


async def test_429_and_5xx_are_retried_with_backoff_then_the_order_is_placed_once(
    world: World,
) -> None:
    await world.start()
    approval = await world.prepare()
    await world.fault("rate-limit", count=2)
    await world.fault("server-error", count=1)
    await world.publish(approval)
    order_id = opening_order_id(approval.reserved.reservation_id)
    await world.events.wait_for(OrderFilled, order_id=order_id)
    tag = world.events.of(OrderSubmitted, order_id=order_id)[0].client_tag
    assert len(await world.broker_orders(tag)) == 1


async def test_retries_are_bounded_then_the_order_fails_with_the_last_error(
    world: World,
) -> None:
    await world.start()
    approval = await world.prepare()
    await world.fault("rate-limit", count=5)
    await world.publish(approval)
    order_id = opening_order_id(approval.reserved.reservation_id)
    (failed,) = await world.events.wait_for(OrderRejected, order_id=order_id)
    assert failed.kind is ErrorKind.RATE_LIMITED
    assert failed.reason.startswith("gave up after 5 attempts")
    assert await world.broker_orders() == []
