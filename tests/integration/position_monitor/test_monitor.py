"""The position monitor end to end (issue 12 acceptance): real NATS, Postgres, simulator,
the real execution and market-data services, the audit recorder and an SMTP server.

The tests run in order on one world (module fixture) and one account:

1. position A (with calls): the price path up fills the 40 % target, then the 60 %;
2. position B (puts, opened at the higher price): the path down triggers the stop loss;
3. position C: closed at the broker outside the app -> attention and an e-mail;
4. the clock moves to 7 DTE: A's call spread is closed by the time exit at the ladder;
5. the event log replays to the monitor's projection exactly; the hash chain verifies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from libs.cli.replay import replay_account
from libs.contracts.commands import (
    GetPosition,
    GetPositions,
    PositionListReply,
    PositionReply,
    SyncPositions,
    SyncPositionsReply,
)
from libs.contracts.execution import OrderAction, OrderFilled, OrderPurpose
from libs.contracts.positions import (
    AttentionReason,
    CloseReason,
    ExitOrderPlaced,
    PositionClosed,
    PositionNeedsAttention,
    PositionOpened,
    PositionStatus,
    PositionUpdated,
    PositionView,
    SpreadClosed,
)
from libs.contracts.strategy import SpreadKind
from libs.contracts.system import NotificationRequested, NotificationTopic
from libs.domain.orders import opening_order_id
from libs.eventlog.verify import verify_chain
from libs.runtime.clock import NEW_YORK
from services.execution.core import position_id_for
from services.position_monitor.projection import POSITIONS
from tests.integration.execution.harness import ACCOUNT, control
from tests.integration.position_monitor.harness import RECIPIENT, World, running_world, until

D = Decimal
PS1, PS2, CALL = SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2, SpreadKind.CALL_SPREAD
#: Shared between the ordered tests of this module.
SEEN: dict[str, Any] = {}


@pytest.fixture(scope="module")
async def world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    async with running_world(server_root, database_url) as w:
        yield w


async def opened(world: World, *, calls: bool) -> PositionOpened:
    chosen = await world.open(calls=calls)
    position_id = position_id_for(opening_order_id(chosen.reserved.reservation_id))
    (position,) = await world.wait_for(PositionOpened, position_id=position_id)
    targets = await world.wait_for(
        ExitOrderPlaced, count=len(position.spreads), position_id=position_id
    )
    assert {t.purpose for t in targets} == {OrderPurpose.PROFIT_TARGET}
    # The monitor values it as soon as market data quotes every leg.
    await world.wait_for(PositionUpdated, position_id=position_id)
    return position


def realized(position: PositionOpened, kind: SpreadKind, filled: OrderFilled) -> Decimal:
    spread = position.spread(kind)
    assert spread is not None
    short = next(f.fill_price for f in filled.legs if f.symbol == spread.short_symbol)
    long = next(f.fill_price for f in filled.legs if f.symbol == spread.long_symbol)
    assert {f.action for f in filled.legs} == {OrderAction.BUY_TO_CLOSE, OrderAction.SELL_TO_CLOSE}
    return (spread.entry_credit - (short - long)) * 100 * spread.quantity


async def position_view(world: World, pid: UUID, ready: Any) -> PositionView:
    """The monitor's view of the position once ``ready(view)`` (its fold may lag the
    test's own subscription by a moment)."""
    for _ in range(100):
        reply = await world.bus.request(
            GetPosition(account_id=ACCOUNT, position_id=pid), PositionReply
        )
        if ready(reply.position):
            return reply.position
        await asyncio.sleep(0.1)
    raise AssertionError(f"the monitor's view never got there: {reply.position}")


def closed(world: World, position_id: UUID, kind: SpreadKind) -> list[SpreadClosed]:
    return world.events.of(SpreadClosed, position_id=position_id, spread_kind=kind)


async def walk(world: World, prices: list[Decimal], done: Any) -> Decimal:
    """Move SPY along ``prices`` (business time passing) until ``done()``; the price."""
    for price in prices:
        await world.set_price(price)
        world.tick()
        try:
            await until(done, timeout=1.5)
        except AssertionError:
            continue
        return price
    raise AssertionError(f"nothing happened along {prices[0]}..{prices[-1]}")


def filled_exit(world: World, spread_closed: SpreadClosed) -> OrderFilled:
    (filled,) = world.events.of(OrderFilled, order_id=spread_closed.closing_order_id)
    return filled


async def test_price_path_fills_the_40_then_the_60_percent_target(world: World) -> None:
    position = await opened(world, calls=True)
    SEEN["A"] = position
    pid = position.position_id
    spot = await world.spot()
    up = [spot + i for i in range(12, 60, 2)]

    price = await walk(world, up, lambda: bool(closed(world, pid, PS1)))
    assert not closed(world, pid, PS2), "the 60 % target filled together with the 40 %"
    (first,) = closed(world, pid, PS1)
    assert first.reason is CloseReason.PROFIT_TARGET
    assert first.realized_pnl == realized(position, PS1, filled_exit(world, first))
    assert first.realized_pnl > 0

    await walk(world, [p for p in up if p > price], lambda: bool(closed(world, pid, PS2)))
    (second,) = closed(world, pid, PS2)
    assert second.reason is CloseReason.PROFIT_TARGET
    assert second.realized_pnl == realized(position, PS2, filled_exit(world, second))
    assert second.occurred_at >= first.occurred_at
    # The call spread stays open with its target; the position is open.
    assert not closed(world, pid, CALL)
    assert not world.events.of(PositionClosed, position_id=pid)
    view = await position_view(world, pid, lambda v: sum(s.open for s in v.spreads) == 1)
    assert view.status is PositionStatus.OPEN
    assert view.realized_pnl == first.realized_pnl + second.realized_pnl
    (call,) = [s for s in view.spreads if s.open]
    assert call.spread.kind is CALL
    assert call.exit_purpose is OrderPurpose.PROFIT_TARGET


async def test_a_path_against_the_position_triggers_the_stop_loss(world: World) -> None:
    position = await opened(world, calls=False)
    SEEN["B"] = position
    pid = position.position_id
    spot = await world.spot()
    down = [spot - i for i in range(12, 60, 2)]

    await walk(
        world,
        down,
        lambda: bool(
            world.events.of(ExitOrderPlaced, position_id=pid, purpose=OrderPurpose.STOP_LOSS)
        ),
    )
    stops = await world.wait_for(
        ExitOrderPlaced, count=2, position_id=pid, purpose=OrderPurpose.STOP_LOSS
    )
    targets = world.events.of(ExitOrderPlaced, position_id=pid, purpose=OrderPurpose.PROFIT_TARGET)
    for stop in stops:
        spread = position.spread(stop.spread_kind)
        assert spread is not None
        # It replaces that spread's profit target; a debit no more than the width.
        (target,) = [t for t in targets if t.spread_kind is stop.spread_kind]
        assert stop.replaces_order_id == target.order_id
        assert -spread.width <= stop.limit_price < 0
        # The valuation that triggered it: closing cost at mid >= 2 x entry credit.
        assert "2 x entry credit" in stop.reason
    (done,) = await world.wait_for(PositionClosed, position_id=pid)
    spreads = [e for e in world.events.of(SpreadClosed, position_id=pid)]
    assert {s.reason for s in spreads} == {CloseReason.STOP_LOSS}
    for s in spreads:
        assert s.realized_pnl == realized(position, s.spread_kind, filled_exit(world, s))
        assert s.realized_pnl < 0
    assert done.realized_pnl == sum(s.realized_pnl for s in spreads)


async def test_an_external_close_raises_attention_and_an_email(world: World) -> None:
    position = await opened(world, calls=False)
    SEEN["C"] = position
    pid = position.position_id
    spread = position.spreads[0]
    for symbol in (spread.short_symbol, spread.long_symbol):
        await control(
            world.simulator,
            "POST",
            f"/sim/accounts/{ACCOUNT}/positions/close",
            {"symbol": symbol},
        )
    reply = await world.bus.request(
        SyncPositions(account_id=ACCOUNT), SyncPositionsReply, timeout=20
    )
    (flag,) = await world.wait_for(
        PositionNeedsAttention, position_id=pid, reason=AttentionReason.GONE_AT_BROKER
    )
    assert flag.active is False
    assert flag.app_managed is False
    view = next(v for v in reply.positions if v.position_id == pid)
    assert (view.active, view.needs_attention) == (False, True)
    assert view.attention_reason is AttentionReason.GONE_AT_BROKER

    (notice,) = await world.wait_for(
        NotificationRequested, topic=NotificationTopic.POSITION_CLOSED_EXTERNALLY
    )
    assert notice.position_id == pid
    assert notice.causation_id == flag.event_id
    subject = (
        f"[Senex] POSITION_CLOSED_EXTERNALLY - account {ACCOUNT}: "
        "SPY: position closed outside the app"
    )
    await until(
        lambda: any(m["Subject"] == subject for m in world.inbox.messages), what="the e-mail"
    )
    message = next(m for m in world.inbox.messages if m["Subject"] == subject)
    assert message["To"] == RECIPIENT
    assert message["X-Senex-Account"] == ACCOUNT
    assert str(pid) in str(message.get_payload())
    # A second sync finds nothing new: no second flag, no second e-mail.
    await world.bus.request(SyncPositions(account_id=ACCOUNT), SyncPositionsReply, timeout=20)
    assert len(world.events.of(PositionNeedsAttention, position_id=pid)) == 1


async def test_at_7_dte_the_time_exit_closes_the_rest_at_the_ladder(world: World) -> None:
    position: PositionOpened = SEEN["A"]
    pid = position.position_id
    call = position.spread(CALL)
    assert call is not None
    # 7 calendar days before expiration, at the daily run (15:45 New York).
    run = datetime.combine(position.expiration - timedelta(days=7), time(15, 45), tzinfo=NEW_YORK)
    await world.set_time(run)
    (exit_,) = await world.wait_for(
        ExitOrderPlaced, position_id=pid, purpose=OrderPurpose.TIME_EXIT
    )
    # 7 DTE: the ceiling is the entry credit; it replaces the call's profit target.
    assert exit_.spread_kind is CALL
    assert exit_.limit_price == -call.entry_credit
    assert "7 DTE" in exit_.reason
    # The call spread is in the money at this price; bring the price down so it fills.
    await world.set_price(await world.spot() - 60)
    (done,) = await world.wait_for(PositionClosed, position_id=pid, timeout=30)
    (last,) = closed(world, pid, CALL)
    assert last.reason is CloseReason.TIME_EXIT
    assert last.closing_order_id == exit_.order_id
    assert last.realized_pnl == realized(position, CALL, filled_exit(world, last))
    total = sum(s.realized_pnl for s in world.events.of(SpreadClosed, position_id=pid))
    assert done.realized_pnl == total


async def test_replay_reproduces_the_monitor_projection_and_the_chain_verifies(
    world: World,
) -> None:
    reply = await world.bus.request(
        GetPositions(account_id=ACCOUNT, include_closed=True), PositionListReply
    )
    assert {v.position_id for v in reply.positions} >= {
        SEEN[k].position_id for k in ("A", "B", "C")
    }
    info = await world.bus.js.stream_info("SENEX_EVENTS")
    await until(lambda: world.recorder.head_position >= info.state.last_seq, what="recorder")
    await until(
        lambda: world.monitor.follower.last_sequence >= info.state.last_seq,
        what="monitor folded",
    )
    result = await replay_account(world.database_url, ACCOUNT)
    replayed = result.fold.state(POSITIONS)
    live = world.monitor.state.book(ACCOUNT)
    assert replayed == live
    for key in ("A", "B"):
        pid = SEEN[key].position_id
        assert replayed.positions[pid].status is PositionStatus.CLOSED
        assert replayed.positions[pid].realized_pnl == live.positions[pid].realized_pnl
    assert replayed.anomalies == ()
    assert all(p.anomalies == () for p in replayed.positions.values())
    async with await psycopg.AsyncConnection.connect(world.database_url, autocommit=True) as conn:
        report = await verify_chain(conn)
    assert report.ok, report.summary()
