"""The strategy service over real NATS and Postgres, with a ManualClock.

Market data is a test-side NATS responder (`FakeMarketData`) answering from fixed values.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from libs.cli.main import app
from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    DecisionSnapshotReply,
    GenerateSuggestion,
    GetDecisionSnapshot,
    GetSuggestion,
    GetSuggestions,
    RejectSuggestion,
    SuggestionListReply,
    SuggestionReply,
)
from libs.contracts.envelope import Event
from libs.contracts.errors import (
    ErrorKind,
    InvalidState,
    MarketDataStaleError,
    NotFound,
    RiskBudgetExceeded,
    RiskWarningUnconfirmed,
    ServiceUnavailable,
    StrikeNotFound,
    ValidationFailed,
)
from libs.contracts.risk import WarningLevel
from libs.contracts.strategy import (
    SkipReason,
    SuggestionApproved,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionSkipped,
    SuggestionStatus,
)
from libs.runtime.bus import Bus
from libs.runtime.clock import NEW_YORK, ManualClock
from libs.runtime.servers import ServerProcess
from services.strategy.core import decide, load_snapshot
from services.strategy.service import StrategyService
from tests.integration.strategy.harness import (
    ACCOUNT,
    START,
    Events,
    FakeMarketData,
    balance,
    risk_failed,
    risk_passed,
    settings_changed,
    start_strategy,
    until,
)

D = Decimal
UNKNOWN_ID = UUID("01970000-0000-7000-8000-0000000000ff")


@dataclass
class World:
    clock: ManualClock
    bus: Bus
    market: FakeMarketData
    events: Events
    nats_url: str
    database_url: str
    service: StrategyService

    async def restart(self) -> StrategyService:
        await self.service.stop()
        self.service = await start_strategy(self.clock, self.nats_url, self.database_url)
        return self.service

    async def generate(self, underlying: Underlying = Underlying.QQQ) -> SuggestionReply:
        command = GenerateSuggestion(
            account_id=ACCOUNT, underlying=underlying, requested_by="alice"
        )
        return await self.bus.request(command, SuggestionReply)

    async def publish_and_fold(self, *events: Event) -> None:
        """Publish, then wait until the service's follower has folded them."""
        acks = await self.bus.publish_many(events)
        target = max(ack.sequence for ack in acks)
        await until(lambda: self.service.follower.last_sequence >= target)


async def make_world(nats_url: str, database_url: str, start: datetime = START) -> World:
    clock = ManualClock(start)
    bus = await Bus.connect(nats_url, "test")
    market = FakeMarketData(clock)
    await market.serve(bus)
    events = Events()
    await events.start(bus)
    service = await start_strategy(clock, nats_url, database_url)
    return World(clock, bus, market, events, nats_url, database_url, service)


@pytest.fixture
async def world(
    nats_factory: Callable[[], ServerProcess], database_url: str
) -> AsyncIterator[World]:
    server = nats_factory()
    w = await make_world(server.url, database_url)
    await w.publish_and_fold(settings_changed(), balance())
    yield w
    await w.service.stop()
    await w.bus.close()


async def test_generate_publishes_the_suggestion_with_the_quotes_it_used(world: World) -> None:
    reply = await world.generate()
    view = reply.suggestion
    assert view.status is SuggestionStatus.PENDING
    s = view.suggestion
    assert (s.underlying, s.expiration, s.dte, s.width) == (
        "QQQ",
        START.date() + timedelta(45),
        45,
        D(3),
    )
    assert (s.base_strike, s.short_strike) == (D(592), D(592))
    assert s.created_at == world.clock.now()
    assert s.expires_at == world.clock.now() + timedelta(hours=24)
    assert len(s.spreads) == 3
    assert s.iv_rank == D("23.5")
    assert s.quotes[0].symbol == "QQQ"
    assert len(s.quotes) == 5  # the underlying and every leg
    for spread in s.spreads:
        for leg in (spread.short_leg, spread.long_leg):
            market = world.market.option_quote(int(leg.symbol.strike), leg.symbol.option_type)
            assert (leg.bid, leg.ask) == (market.bid, market.ask)
    (event,) = await world.events.wait_for(SuggestionGenerated)
    assert event.suggestion == s
    assert event.reason_trail[0].startswith("position limit")
    assert event.risk_free_rate == D("0.045")
    assert not event.automatic
    assert event.account_id == ACCOUNT


async def test_approve_at_mid_in_order_units(world: World) -> None:
    s = (await world.generate()).suggestion.suggestion
    reply = await world.bus.request(
        ApproveSuggestion(account_id=ACCOUNT, suggestion_id=s.suggestion_id, requested_by="alice"),
        ApprovalReply,
    )
    expected = s.total_mid_credit.quantize(D("0.01"), rounding="ROUND_FLOOR")
    assert reply.limit_credit == expected
    assert reply.warning_level is WarningLevel.NONE
    (approved,) = await world.events.wait_for(SuggestionApproved)
    assert approved.limit_credit == expected
    assert approved.approved_by == "alice"
    assert not approved.automatic
    # Approved once: a second approval is refused.
    with pytest.raises(InvalidState, match="APPROVED"):
        await world.bus.request(
            ApproveSuggestion(account_id=ACCOUNT, suggestion_id=s.suggestion_id), ApprovalReply
        )


async def test_a_custom_credit_of_a_2_2_trident_is_halved(world: World) -> None:
    world.market.closes = ("580",) * 19  # 591 is far above the upper band: no call spread
    s = (await world.generate()).suggestion.suggestion
    assert s.near_bollinger_band
    assert s.band_reason
    assert len(s.spreads) == 2
    reply = await world.bus.request(
        ApproveSuggestion(
            account_id=ACCOUNT, suggestion_id=s.suggestion_id, custom_credit=D("2.71")
        ),
        ApprovalReply,
    )
    assert reply.limit_credit == D("1.35")
    (approved,) = await world.events.wait_for(SuggestionApproved)
    assert approved.custom_credit == D("2.71")


async def test_a_risk_warning_must_be_confirmed(world: World) -> None:
    s = (await world.generate()).suggestion.suggestion
    await world.publish_and_fold(risk_passed(s.suggestion_id, WarningLevel.WARNING))
    approve = ApproveSuggestion(account_id=ACCOUNT, suggestion_id=s.suggestion_id)
    with pytest.raises(RiskWarningUnconfirmed):
        await world.bus.request(approve, ApprovalReply)
    confirmed = approve.model_copy(update={"confirm_warning": True})
    reply = await world.bus.request(confirmed, ApprovalReply)
    assert reply.warning_level is WarningLevel.WARNING
    (approved,) = await world.events.wait_for(SuggestionApproved)
    assert approved.warning_confirmed


async def test_a_failed_risk_check_refuses_the_approval(world: World) -> None:
    s = (await world.generate()).suggestion.suggestion
    await world.publish_and_fold(risk_failed(s.suggestion_id))
    view = await world.bus.request(
        GetSuggestion(account_id=ACCOUNT, suggestion_id=s.suggestion_id), SuggestionReply
    )
    assert view.suggestion.risk_check_passed is False
    with pytest.raises(RiskBudgetExceeded, match="exceeds the remaining"):
        await world.bus.request(
            ApproveSuggestion(account_id=ACCOUNT, suggestion_id=s.suggestion_id), ApprovalReply
        )


async def test_reject_then_nothing_else(world: World) -> None:
    s = (await world.generate()).suggestion.suggestion
    reply = await world.bus.request(
        RejectSuggestion(
            account_id=ACCOUNT, suggestion_id=s.suggestion_id, requested_by="alice", reason="no"
        ),
        SuggestionReply,
    )
    assert reply.suggestion.status is SuggestionStatus.REJECTED
    (rejected,) = await world.events.wait_for(SuggestionRejected)
    assert (rejected.rejected_by, rejected.reason) == ("alice", "no")
    with pytest.raises(InvalidState, match="REJECTED"):
        await world.bus.request(
            ApproveSuggestion(account_id=ACCOUNT, suggestion_id=s.suggestion_id), ApprovalReply
        )
    pending = await world.bus.request(GetSuggestions(account_id=ACCOUNT), SuggestionListReply)
    assert pending.suggestions == ()
    everything = await world.bus.request(
        GetSuggestions(account_id=ACCOUNT, pending_only=False), SuggestionListReply
    )
    assert [v.status for v in everything.suggestions] == [SuggestionStatus.REJECTED]


async def test_unknown_suggestion_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.bus.request(
            GetSuggestion(account_id=ACCOUNT, suggestion_id=UNKNOWN_ID), SuggestionReply
        )


async def test_a_users_approval_and_rejection_join_the_suggestions_causal_chain(
    world: World,
) -> None:
    # Regression: they carried the command's own fresh correlation, so the reservation,
    # order, position and exits of a manually approved trade were a chain apart from the
    # suggestion's generation and risk check (the audit's causal chain lost them). The
    # command stays the direct cause.
    first = (await world.generate()).suggestion.suggestion
    second = (await world.generate()).suggestion.suggestion
    approve = ApproveSuggestion(
        account_id=ACCOUNT, suggestion_id=first.suggestion_id, requested_by="alice"
    )
    await world.bus.request(approve, ApprovalReply)
    await world.restart()  # the origins are rebuilt from the stream
    reject = RejectSuggestion(
        account_id=ACCOUNT, suggestion_id=second.suggestion_id, requested_by="alice"
    )
    await world.bus.request(reject, SuggestionReply)
    (approved,) = await world.events.wait_for(SuggestionApproved)
    (rejected,) = await world.events.wait_for(SuggestionRejected)
    generated = {e.suggestion.suggestion_id: e for e in world.events.of(SuggestionGenerated)}
    for decision, command in ((approved, approve), (rejected, reject)):
        origin = generated[decision.suggestion_id]
        assert decision.correlation_id == origin.correlation_id != command.correlation_id
        assert decision.causation_id == command.command_id


async def test_a_suggestion_expires_24_hours_after_creation(world: World) -> None:
    s = (await world.generate()).suggestion.suggestion
    world.clock.advance(timedelta(hours=23, minutes=59))
    await world.events.wait_for(SuggestionGenerated)
    world.clock.advance(timedelta(minutes=1))
    (expired,) = await world.events.wait_for(SuggestionExpired)
    assert expired.suggestion_id == s.suggestion_id
    assert expired.expires_at == s.expires_at
    generated = world.events.of(SuggestionGenerated)[0]
    assert expired.correlation_id == generated.correlation_id
    with pytest.raises(InvalidState, match="EXPIRED"):
        await world.bus.request(
            ApproveSuggestion(account_id=ACCOUNT, suggestion_id=s.suggestion_id), ApprovalReply
        )


async def test_a_chain_missing_the_strikes_is_a_reasoned_skip(world: World) -> None:
    world.market.unquoted = {589}
    with pytest.raises(StrikeNotFound, match="589"):
        await world.generate()
    (skip,) = await world.events.wait_for(SuggestionSkipped)
    assert skip.reason_code is SkipReason.STRIKE_NOT_FOUND
    assert "589" in skip.message
    assert skip.reason_trail[-1].endswith("589 put not two-sided")
    assert world.events.of(SuggestionGenerated) == []


async def test_stale_market_data_is_a_skip_of_that_kind(world: World) -> None:
    world.market.stale = True
    with pytest.raises(MarketDataStaleError):
        await world.generate()
    (skip,) = await world.events.wait_for(SuggestionSkipped)
    assert skip.reason_code is SkipReason.MARKET_DATA_STALE


async def test_disabled_underlying_and_unknown_balance_are_clear_errors(world: World) -> None:
    await world.publish_and_fold(settings_changed(underlyings=(Underlying.QQQ,)))
    with pytest.raises(ValidationFailed, match="SPY is not enabled") as refused:
        await world.generate(Underlying.SPY)
    assert refused.value.field == "underlying"
    command = GenerateSuggestion(account_id="5WT00009", underlying=Underlying.QQQ)
    with pytest.raises(ServiceUnavailable, match="every 30 s") as no_balance:
        await world.bus.request(command, SuggestionReply)
    assert no_balance.value.kind is ErrorKind.SERVICE_UNAVAILABLE


async def test_the_decision_snapshot_is_what_generate_decides_from(world: World) -> None:
    reply = await world.bus.request(
        GetDecisionSnapshot(account_id=ACCOUNT, underlying=Underlying.QQQ), DecisionSnapshotReply
    )
    snapshot = load_snapshot(json.dumps(reply.snapshot))
    decision = decide(snapshot)
    generated = (await world.generate()).suggestion.suggestion
    assert decision.proposal is not None
    assert decision.proposal.total_credit.mid == generated.total_mid_credit
    assert reply.snapshot["account"] == {"buying_power": "20000", "positions": []}
    assert reply.snapshot["settings"] == {"risk_template": "conservative"}


async def test_a_restart_rebuilds_the_suggestions_from_the_stream(world: World) -> None:
    first = (await world.generate()).suggestion.suggestion
    second = (await world.generate()).suggestion.suggestion
    await world.bus.request(
        ApproveSuggestion(account_id=ACCOUNT, suggestion_id=first.suggestion_id), ApprovalReply
    )
    await world.restart()
    assert world.service.follower.caught_up
    views = await world.bus.request(
        GetSuggestions(account_id=ACCOUNT, pending_only=False), SuggestionListReply
    )
    statuses = {v.suggestion.suggestion_id: v.status for v in views.suggestions}
    assert statuses == {
        first.suggestion_id: SuggestionStatus.APPROVED,
        second.suggestion_id: SuggestionStatus.PENDING,
    }
    # The balance and settings were rebuilt too: generation still works.
    await world.generate()
    health = await world.service.health()
    assert health.healthy, health.checks


async def test_automation_generates_at_10_and_approves_once_on_a_passed_check(
    nats_factory: Callable[[], ServerProcess], database_url: str
) -> None:
    before_ten = datetime(2025, 6, 3, 9, 59, tzinfo=NEW_YORK)
    w = await make_world(nats_factory().url, database_url, start=before_ten)
    try:
        await w.publish_and_fold(
            settings_changed(automation=True, offset_cents=2, underlyings=(Underlying.QQQ,)),
            balance(),
        )
        assert w.events.of(SuggestionGenerated) == []
        w.clock.advance(timedelta(minutes=1))
        (generated,) = await w.events.wait_for(SuggestionGenerated)
        assert generated.automatic
        s = generated.suggestion
        assert w.market.requests.count("chain") == 1

        check = risk_passed(s.suggestion_id)
        await w.bus.publish(check)
        (approved,) = await w.events.wait_for(SuggestionApproved)
        assert approved.automatic
        assert approved.approved_by is None
        assert approved.causation_id == check.event_id
        assert approved.limit_credit == (s.total_mid_credit - D("0.02")).quantize(
            D("0.01"), rounding="ROUND_FLOOR"
        )

        # A second passed check, a restart, a later tick: nothing more happens.
        await w.publish_and_fold(risk_passed(s.suggestion_id))
        await w.restart()
        w.clock.advance(timedelta(hours=1))
        await w.publish_and_fold(risk_passed(s.suggestion_id))
        await asyncio.sleep(0.5)
        assert len(w.events.of(SuggestionApproved)) == 1
        assert len(w.events.of(SuggestionGenerated)) == 1
        assert w.market.requests.count("chain") == 1
    finally:
        await w.service.stop()
        await w.bus.close()


async def test_automation_at_start_up_runs_what_is_due_and_a_warning_is_left_to_the_user(
    nats_factory: Callable[[], ServerProcess], database_url: str
) -> None:
    w = await make_world(nats_factory().url, database_url)  # 11:00, already past 10:00
    try:
        await w.publish_and_fold(
            settings_changed(automation=True, underlyings=(Underlying.QQQ,)), balance()
        )
        (generated,) = await w.events.wait_for(SuggestionGenerated)
        assert generated.automatic
        await w.publish_and_fold(
            risk_passed(generated.suggestion.suggestion_id, WarningLevel.WARNING)
        )
        await asyncio.sleep(0.3)
        assert w.events.of(SuggestionApproved) == []
    finally:
        await w.service.stop()
        await w.bus.close()


async def _senex(nats_url: str, *args: str) -> tuple[int, str, str]:
    """Run the real `senex` CLI in its own process, as a trader would."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "libs.cli.main",
        *args,
        env={**os.environ, "NATS_URL": nats_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_senex_suggest_account_saves_the_live_snapshot_and_decides_offline(
    world: World, tmp_path: Path
) -> None:
    saved = tmp_path / "live.json"
    code, out, err = await _senex(
        world.nats_url,
        *("suggest", "--account", ACCOUNT, "--underlying", "QQQ", "--save", str(saved), "--json"),
    )
    assert code == 0, err
    live = json.loads(out)
    assert live["decision"] == "suggest"
    offline = CliRunner().invoke(app, ["suggest", "--snapshot", str(saved), "--json"])
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout) == live


async def test_senex_suggest_account_errors_are_one_line(world: World) -> None:
    code, out, err = await _senex(
        world.nats_url, "suggest", "--account", "5WT00009", "--underlying", "QQQ"
    )
    assert code == 1
    assert err.strip().count("\n") == 0, err
    assert "SERVICE_UNAVAILABLE" in err
    assert "Traceback" not in out + err
