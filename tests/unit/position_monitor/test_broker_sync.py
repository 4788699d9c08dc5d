"""The broker sync: which accounts, which read is due, what is flagged (once, confirmed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

import structlog
from prometheus_client import CollectorRegistry

from libs.broker.adapter import BrokerAdapter
from libs.broker.feeds import AccountFeeds
from libs.broker.models import BrokerPosition
from libs.contracts.commands import SyncPositions
from libs.contracts.errors import BrokerUnavailable
from libs.contracts.positions import AttentionReason, HeldLeg, PositionNeedsAttention
from services.position_monitor.broker_sync import (
    BrokerSync,
    PendingSync,
    SyncRead,
    SyncRequests,
    attention_fields,
    new_findings,
    next_read,
    sync_accounts,
)
from services.position_monitor.closing import FillCloser
from services.position_monitor.core import SyncFinding
from services.position_monitor.metrics import MonitorCounters
from services.position_monitor.settings import MonitorSettings
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import (
    ACCOUNT,
    LONG_CALL,
    LONG_PUT,
    NOW,
    POSITION,
    SHORT_CALL,
    SHORT_PUT,
    D,
)
from tests.unit.position_monitor.fakes import FakeShell, env, fold, opened

LATER = NOW + timedelta(minutes=1)


def finding(reason: AttentionReason, held: int | None = None) -> SyncFinding:
    return SyncFinding(
        position_id=POSITION,
        underlying="SPY",
        reason=reason,
        message="differs",
        active=reason is not AttentionReason.GONE_AT_BROKER,
        held_legs=(HeldLeg(symbol=SHORT_PUT, quantity=held),) if held is not None else (),
    )


def flag(f: SyncFinding, account: str = ACCOUNT) -> PositionNeedsAttention:
    return PositionNeedsAttention(
        **env(account_id=account),
        position_id=f.position_id,
        underlying=f.underlying,
        reason=f.reason,
        message=f.message,
        app_managed=f.active,
        active=f.active,
        held_legs=f.held_legs,
    )


# --- pure decisions ------------------------------------------------------------------------


def test_accounts_with_positions_the_broker_should_hold_are_synced() -> None:
    assert sync_accounts(MonitorState()) == []
    state = fold(opened(account_id="B"), opened(account_id="A"))
    assert sync_accounts(state) == ["A", "B"]
    state.apply(flag(finding(AttentionReason.GONE_AT_BROKER), account="A"))
    assert sync_accounts(state) == ["B"]  # gone: reported already, nothing to expect


def test_a_first_read_when_never_synced_due_or_asked() -> None:
    assert next_read(None, False, None, NOW, 0.0) is SyncRead.FIRST
    assert next_read(None, False, LATER, NOW, 0.0) is None
    assert next_read(None, False, NOW, NOW, 0.0) is SyncRead.FIRST
    assert next_read(None, True, LATER, NOW, 0.0) is SyncRead.FIRST


def test_pending_findings_wait_for_their_confirmation_and_nothing_else() -> None:
    pending = PendingSync([finding(AttentionReason.GONE_AT_BROKER)], confirm_at=10.0)
    assert next_read(pending, True, None, NOW, 9.9) is None
    assert next_read(pending, False, NOW, LATER, 10.0) is SyncRead.CONFIRM


def test_only_new_findings_of_known_positions_are_flagged() -> None:
    state = fold(opened())
    mismatch = finding(AttentionReason.BROKER_MISMATCH, held=-1)
    unknown = replace(mismatch, position_id=UUID(int=7))
    assert [f for f, _ in new_findings(state, ACCOUNT, [mismatch, unknown])] == [mismatch]
    state.apply(flag(mismatch))
    assert new_findings(state, ACCOUNT, [mismatch]) == []
    moved = finding(AttentionReason.BROKER_MISMATCH, held=-2)
    assert [f for f, _ in new_findings(state, ACCOUNT, [moved])] == [moved]


def test_a_gone_position_is_no_longer_managed_a_mismatch_keeps_its_exits() -> None:
    record = fold(opened()).book(ACCOUNT).positions[POSITION]
    gone = attention_fields(finding(AttentionReason.GONE_AT_BROKER), record)
    assert (gone["app_managed"], gone["active"]) == (False, False)
    mismatch = attention_fields(finding(AttentionReason.BROKER_MISMATCH, held=-1), record)
    assert (mismatch["app_managed"], mismatch["active"]) == (True, True)
    assert mismatch["held_legs"] == (HeldLeg(symbol=SHORT_PUT, quantity=-1),)


async def test_a_position_notification_asks_for_a_sync_and_wakes_the_loop() -> None:
    woken: list[bool] = []
    requests = SyncRequests(lambda: woken.append(True))
    assert ACCOUNT not in requests
    await requests.position_changed(ACCOUNT, cast(BrokerPosition, None))
    assert ACCOUNT in requests
    assert woken == [True]
    requests.discard(ACCOUNT)
    assert ACCOUNT not in requests


# --- the sync against a fake broker -------------------------------------------------------


def held(symbol: str, quantity: int) -> BrokerPosition:
    return BrokerPosition(
        account_number=ACCOUNT,
        symbol=symbol,
        underlying="QQQ",
        instrument_type="Equity Option",
        quantity=quantity,
        average_open_price=D(1),
        close_price=D(1),
        multiplier=D(100),
    )


#: What the broker holds of the Trident (both put spreads share their legs).
TRIDENT = [held(SHORT_PUT, -2), held(LONG_PUT, 2), held(SHORT_CALL, -1), held(LONG_CALL, 1)]


class Broker:
    """Holds ``holdings`` (nothing: every position is gone); no account stream opens."""

    def __init__(self) -> None:
        self.reads = 0
        self.holdings: list[BrokerPosition] = []

    async def get_positions(self, account: str) -> list[BrokerPosition]:
        self.reads += 1
        return list(self.holdings)

    async def session_for(self, account: str) -> Any:
        raise BrokerUnavailable("no session in a unit test")


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    sync: BrokerSync
    shell: FakeShell
    broker: Broker
    ticks: Ticks
    requests: SyncRequests


def rig_for(state: MonitorState) -> Rig:
    shell = FakeShell(state)
    broker = Broker()
    adapter = cast(BrokerAdapter, broker)
    log = structlog.get_logger()
    counters = MonitorCounters.register(CollectorRegistry())
    requests = SyncRequests(lambda: None)
    feeds: AccountFeeds[BrokerPosition] = AccountFeeds(
        lambda: adapter,
        lambda: shell.clock,
        subscribe=lambda stream: stream.positions(),
        handle=requests.position_changed,
        name="test",
        log=log,
    )
    ticks = Ticks()
    sync = BrokerSync(
        shell,
        state,
        adapter=adapter,
        feeds=feeds,
        requests=requests,
        closer=FillCloser(shell, state, counters, log),
        lock=asyncio.Lock(),
        settings=MonitorSettings(sync_interval_s=180, sync_settle_s=3),
        counters=counters,
        log=log,
        monotonic=ticks,
    )
    return Rig(sync, shell, broker, ticks, requests)


async def test_a_finding_is_flagged_once_a_second_read_confirms_it() -> None:
    state = fold(opened())
    rig = rig_for(state)
    sync, shell, broker, ticks = rig.sync, rig.shell, rig.broker, rig.ticks
    await sync.run(NOW)
    assert broker.reads == 1
    assert shell.events() == []  # first read: wait for the confirmation
    ticks.now += 2.9
    await sync.run(NOW)
    assert broker.reads == 1
    ticks.now += 0.1
    await sync.run(NOW)
    assert broker.reads == 2
    (flagged,) = shell.events()
    assert isinstance(flagged, PositionNeedsAttention)
    assert flagged.reason is AttentionReason.GONE_AT_BROKER
    assert flagged.app_managed is False
    # Flagged and inactive: no longer expected at the broker, so no longer synced.
    await sync.run(NOW + timedelta(seconds=180))
    assert broker.reads == 2


async def test_periodic_reads_follow_the_interval_unless_asked() -> None:
    state = fold(opened())
    rig = rig_for(state)
    sync, shell, broker = rig.sync, rig.shell, rig.broker
    broker.holdings = TRIDENT
    await sync.run(NOW)
    assert broker.reads == 1
    await sync.run(NOW + timedelta(seconds=179))
    assert broker.reads == 1
    await sync.run(NOW + timedelta(seconds=180))
    assert broker.reads == 2
    rig.requests.add(ACCOUNT)  # a position notification or a reconnect
    await sync.run(NOW + timedelta(seconds=181))
    assert broker.reads == 3
    assert shell.events() == []  # the broker holds what the app expects


async def test_sync_positions_flags_from_one_read_and_answers_the_views() -> None:
    state = fold(opened())
    rig = rig_for(state)
    sync, shell, broker = rig.sync, rig.shell, rig.broker
    reply = await sync.sync_positions(SyncPositions(account_id=ACCOUNT))
    assert broker.reads == 1
    (flagged,) = shell.events()
    assert isinstance(flagged, PositionNeedsAttention)
    (view,) = reply.positions
    assert (view.position_id, view.needs_attention, view.active) == (POSITION, True, False)
    assert reply.synced_at == NOW
