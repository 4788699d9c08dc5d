"""The trading flow end to end, across the real services (issues 9, 10 and 11).

One NATS server of the test's own, the module's Postgres database and the broker
simulator (clock pinned at its start, speed 0; QQQ pinned inside the seeded closes'
bands, so every quote holds still). The default simulator customer is linked the way
the gateway links an account (vault + ``AccountLinked`` + default settings). In-process,
on one `ManualClock` at the simulator's start (a Tuesday, 11:00 New York, market open):
the audit recorder, market data, strategy, risk and execution.

Generate -> risk check -> approve at a marketable credit -> reservation (after the
broker's dry run) -> the opening order, its fill -> the position and its three profit
targets -> the reservation released as FILLED; then the same story read back from the
causal links, the audit log (causal chain, hash chain), ``senex replay`` and the broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import pytest
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerCredentials
from libs.broker.vault import CredentialsVault
from libs.broker.wiring import BrokerWiring
from libs.cli.replay import replay_account
from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    ChainSnapshotReply,
    EventPageReply,
    GenerateSuggestion,
    GetCausalChain,
    GetChainSnapshot,
    GetMarketCondition,
    MarketConditionReply,
    SuggestionReply,
)
from libs.contracts.envelope import Event
from libs.contracts.errors import MarketDataStaleError
from libs.contracts.execution import (
    OrderAccepted,
    OrderAction,
    OrderFilled,
    OrderPurpose,
    OrderStatus,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.positions import ExitOrderPlaced, PositionOpened, PositionStatus
from libs.contracts.risk import (
    ReleaseReason,
    RiskCheckPassed,
    RiskReleased,
    RiskReserved,
    WarningLevel,
)
from libs.contracts.strategy import (
    SpreadKind,
    SuggestionApproved,
    SuggestionGenerated,
    SuggestionStatus,
)
from libs.domain.orders import opening_order_id
from libs.eventlog.migrate import migrate
from libs.eventlog.verify import verify_chain
from libs.runtime.bus import BUSINESS_STREAM, Bus
from libs.runtime.clock import ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.servers import ServerProcess
from libs.runtime.settings import Settings
from libs.runtime.settings import TradingMode as SystemMode
from services.audit.service import AuditService
from services.execution.bootstrap import ExecutionDependencies
from services.execution.core import position_id_for
from services.execution.projection import ORDERS
from services.execution.service import ExecutionService
from services.execution.settings import ExecutionSettings
from services.gateway.accounts import Accounts, SettingsStore
from services.gateway.db import Pool
from services.gateway.users import UserStore
from services.position_monitor.projection import POSITIONS
from services.risk.projection import RISK, ReservationStatus
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from services.simulator.server import SimulatorServer
from services.strategy.projection import SUGGESTIONS
from services.strategy.service import StrategyService
from tests.integration.execution.harness import broker_orders
from tests.integration.market_data.helpers import (
    Collector,
    collect,
    control,
    eventually,
    running_service,
    set_price,
)
from tests.integration.risk.harness import VAULT_KEY, broker_settings, start_risk
from tests.integration.strategy.harness import start_strategy
from tests.simulator_fixtures import SIM_START

ACCOUNT = DEFAULT_ACCOUNT_NUMBER
USER = "alice"
D = Decimal
CENT = D("0.01")
#: Inside the seeded closes' Bollinger bands (about 576.5 to 603.8): a full 2:2:1:1.
PRICE = "589.00"
#: Profit targets per spread (DOMAIN.md 6).
TARGETS = {
    SpreadKind.PUT_SPREAD_1: D("0.40"),
    SpreadKind.PUT_SPREAD_2: D("0.60"),
    SpreadKind.CALL_SPREAD: D("0.50"),
}
WAIT = 20.0
CREDENTIALS = BrokerCredentials(
    client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
    refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
)
E = TypeVar("E", bound=Event)


@dataclass
class Flow:
    """The running system and what it published."""

    simulator: SimulatorServer
    clock: ManualClock
    dsn: str
    bus: Bus
    events: Collector
    audit: AuditService
    execution: ExecutionService

    def of(self, kind: type[E], **where: Any) -> list[E]:
        """Collected events of ``kind`` whose fields equal ``where``, in arrival order."""
        return [
            e
            for e in self.events.events
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in where.items())
        ]

    async def wait(self, kind: type[E], count: int = 1, **where: Any) -> list[E]:
        """At least ``count`` events of ``kind`` matching ``where`` (waiting for them)."""
        await eventually(lambda: len(self.of(kind, **where)) >= count, timeout=WAIT)
        return self.of(kind, **where)

    async def one(self, kind: type[E], **where: Any) -> E:
        """The only event of ``kind`` matching ``where`` (waiting for it)."""
        (event,) = await self.wait(kind, **where)
        return event

    def by_id(self, event_id: UUID | None) -> Event | None:
        return next((e for e in self.events.events if e.event_id == event_id), None)


def _context(name: str, nats_url: str, dsn: str, clock: ManualClock) -> ServiceContext:
    return ServiceContext(
        name=name,
        settings=Settings(nats_url=nats_url, database_url=dsn, mode=SystemMode.PAPER),
        clock=clock,
        metrics=ServiceMetrics(name),
        request_stop=lambda: None,
    )


async def _link_default_customer(dsn: str, bus: Bus, server: SimulatorServer) -> None:
    """Link the simulator's default customer to ``USER`` as the gateway does."""
    pool = Pool(dsn, 1)
    try:
        await UserStore(pool).create(USER, "correct horse battery")
        settings = broker_settings(server)
        accounts = Accounts(
            vault=await CredentialsVault.open(dsn, settings),
            settings_store=SettingsStore(pool),
            broker_settings=settings,
            publish=bus.publish,
            system_mode=SystemMode.PAPER,
        )
        link = await accounts.link(
            user_id=USER,
            credentials=CREDENTIALS,
            account_number=ACCOUNT,
            nickname=None,
            now=SIM_START,
        )
        assert link.account_number == ACCOUNT
    finally:
        await pool.close()


async def _warm(bus: Bus) -> None:
    """Wait until market data has QQQ's bands and every quote of the chain window."""

    async def condition() -> MarketConditionReply | None:
        try:
            return await bus.request(
                GetMarketCondition(account_id=ACCOUNT, underlying=Underlying.QQQ),
                MarketConditionReply,
            )
        except MarketDataStaleError:
            return None

    async def chain() -> ChainSnapshotReply | None:
        reply = await bus.request(
            GetChainSnapshot(account_id=ACCOUNT, underlying=Underlying.QQQ, wait_seconds=5),
            ChainSnapshotReply,
            timeout=10,
        )
        return reply if reply.expirations and not reply.missing else None

    await eventually(condition, timeout=30)
    await eventually(chain, timeout=30)


def _has_balance(strategy: StrategyService) -> Callable[[], bool]:
    return lambda: strategy.account(ACCOUNT).balance is not None


@pytest.fixture
async def flow(
    nats_factory: Callable[[], ServerProcess], database_url: str, simulator: SimulatorServer
) -> AsyncIterator[Flow]:
    nats = nats_factory()  # the business stream and every durable consumer start empty
    dsn = database_url
    await migrate(dsn)
    await control(simulator, "PUT", "/sim/clock", {"time": SIM_START.isoformat(), "speed": 0})
    await set_price(simulator, "QQQ", PRICE)
    clock = ManualClock(SIM_START)
    settings = broker_settings(simulator)
    async with AsyncExitStack() as stack:
        events = await stack.enter_async_context(collect(nats.url, "senex.evt.>"))
        bus = await Bus.connect(nats.url, "trading-flow-test")
        stack.push_async_callback(bus.close)
        await _link_default_customer(dsn, bus, simulator)

        audit = AuditService(batch_size=100)
        await audit.start(_context("audit", nats.url, dsn, clock))
        stack.push_async_callback(audit.stop)
        await stack.enter_async_context(
            running_service(
                nats_url=nats.url,
                database_url=dsn,
                server=simulator,
                vault_key=VAULT_KEY,
                clock=clock,
            )
        )
        strategy = await start_strategy(clock, nats.url, dsn)
        stack.push_async_callback(strategy.stop)
        risk = await start_risk(simulator, nats.url, dsn, clock)
        stack.push_async_callback(risk.stop)
        # Credentials from the vault (no test-side credentials source).
        execution = ExecutionService(
            ExecutionDependencies(
                clock=clock,
                settings=ExecutionSettings(backoff_scale=0.05, reconcile_interval_s=0.5),
                broker=BrokerWiring(settings=settings),
            )
        )
        await execution.start(_context("execution", nats.url, dsn, clock))
        stack.push_async_callback(execution.stop)

        await eventually(_has_balance(strategy), timeout=30)
        await eventually(lambda: risk.account(ACCOUNT).risk() is not None, timeout=30)
        await _warm(bus)
        yield Flow(simulator, clock, dsn, bus, events, audit, execution)


def _fill_price(filled: OrderFilled, action: OrderAction, put: bool) -> Decimal:
    (price,) = {
        f.fill_price
        for f in filled.legs
        if f.action is action and (f.symbol.contract.option_type.value == "PUT") is put
    }
    return price


def _causes(flow: Flow, event: Event) -> list[Event]:
    """``event`` and its causes, following causation_id while it names a seen event."""
    path = [event]
    cause = flow.by_id(event.causation_id)
    while cause is not None:
        path.append(cause)
        cause = flow.by_id(cause.causation_id)
    return path


async def _recorded_everything(flow: Flow) -> int:
    """The stream's last sequence, once the audit log's head has reached it."""
    info = await flow.bus.js.stream_info(BUSINESS_STREAM.name)
    last = int(info.state.last_seq)
    await eventually(lambda: flow.audit.recorder.head_position >= last, timeout=WAIT)
    return last


async def test_generate_approve_fill_position_exits_audit_replay_and_broker(flow: Flow) -> None:
    # --- 1. Generate: the suggestion, and risk's verdict on it ------------------------
    command = GenerateSuggestion(account_id=ACCOUNT, underlying=Underlying.QQQ, requested_by=USER)
    reply = await flow.bus.request(command, SuggestionReply, timeout=15)
    suggestion = reply.suggestion.suggestion
    sid = suggestion.suggestion_id
    generated = await flow.one(SuggestionGenerated)
    assert generated.suggestion == suggestion
    assert generated.causation_id == command.command_id
    assert generated.correlation_id == command.correlation_id
    check = await flow.one(RiskCheckPassed, suggestion_id=sid)
    assert suggestion.includes_call_spread  # QQQ inside the bands: the full 2:2:1:1
    assert [s.kind for s in suggestion.spreads] == list(TARGETS)

    # --- 2. Approve at the natural total credit: marketable, so it fills at once -------
    natural = suggestion.total_natural_credit.quantize(CENT, rounding=ROUND_FLOOR)
    assert natural > 0, f"the chain gives no credit at the natural ({natural})"
    warning = check.assessment.warning_level
    approve = ApproveSuggestion(
        account_id=ACCOUNT,
        suggestion_id=sid,
        custom_credit=natural,
        confirm_warning=warning is not WarningLevel.NONE,
        requested_by=USER,
    )
    approval = await flow.bus.request(approve, ApprovalReply)
    assert approval.limit_credit == natural  # 2:2:1:1 is one unit: total = order price
    approved = await flow.one(SuggestionApproved, suggestion_id=sid)
    assert approved.limit_credit == natural
    assert approved.custom_credit == natural
    assert approved.approved_by == USER

    reserved = await flow.one(RiskReserved, suggestion_id=sid)
    assert reserved.limit_credit == natural
    assert reserved.amount == 2 * suggestion.width * 100 - natural * 100
    assert reserved.assessment.trade_max_risk == reserved.amount
    assert reserved.assessment.dry_run_buying_power_change is not None  # the broker judged it

    order_id = opening_order_id(reserved.reservation_id)
    submitted = await flow.one(OrderSubmitted, order_id=order_id)
    accepted = await flow.one(OrderAccepted, order_id=order_id)
    filled = await flow.one(OrderFilled, order_id=order_id)
    assert submitted.purpose is OrderPurpose.OPEN
    assert submitted.time_in_force is TimeInForce.DAY
    assert submitted.suggestion_id == sid
    assert submitted.reservation_id == reserved.reservation_id
    assert submitted.limit_price == natural
    assert [leg.quantity for leg in submitted.legs] == [2, 2, 1, 1]

    opened = await flow.one(PositionOpened)
    assert opened.position_id == position_id_for(order_id)
    assert opened.suggestion_id == sid
    assert opened.opening_order_id == order_id
    put_credit = _fill_price(filled, OrderAction.SELL_TO_OPEN, True) - _fill_price(
        filled, OrderAction.BUY_TO_OPEN, True
    )
    call_credit = _fill_price(filled, OrderAction.SELL_TO_OPEN, False) - _fill_price(
        filled, OrderAction.BUY_TO_OPEN, False
    )
    credits = {s.kind: s.entry_credit for s in opened.spreads}
    assert credits == {
        SpreadKind.PUT_SPREAD_1: put_credit,
        SpreadKind.PUT_SPREAD_2: put_credit,
        SpreadKind.CALL_SPREAD: call_credit,
    }
    assert opened.total_entry_credit == 2 * put_credit + call_credit
    assert opened.total_entry_credit >= natural  # filled at the limit or better
    assert opened.max_risk == 2 * suggestion.width * 100 - opened.total_entry_credit * 100

    exits = await flow.wait(ExitOrderPlaced, count=3, position_id=opened.position_id)
    assert len(exits) == 3
    by_kind = {e.spread_kind: e for e in exits}
    assert set(by_kind) == set(TARGETS)
    for kind, target in TARGETS.items():
        decided = by_kind[kind]
        debit = -(credits[kind] * (1 - target))
        assert decided.limit_price == debit.quantize(CENT, rounding=ROUND_FLOOR)
        assert decided.limit_price < 0
        assert decided.purpose is OrderPurpose.PROFIT_TARGET
        assert decided.time_in_force is TimeInForce.GTC
        assert {leg.action for leg in decided.legs} == {
            OrderAction.BUY_TO_CLOSE,
            OrderAction.SELL_TO_CLOSE,
        }
    exit_ids = {e.order_id for e in exits}
    exit_submitted = [await flow.one(OrderSubmitted, order_id=i) for i in exit_ids]
    exit_accepted = [await flow.one(OrderAccepted, order_id=i) for i in exit_ids]

    released = await flow.one(RiskReleased, reservation_id=reserved.reservation_id)
    assert released.reason is ReleaseReason.FILLED
    assert released.amount == reserved.amount
    assert released.order_id == order_id

    # --- 3. One causal chain from every exit back to the generation ------------------
    # Causation links each event to the one that caused it, back to the user's approval
    # (caused by the ApproveSuggestion command) and, for the generation and its risk
    # check, to the GenerateSuggestion command; the approval names the suggestion and
    # shares the generation's correlation, which every event of the flow carries.
    for decided in exits:
        assert _causes(flow, decided) == [
            decided,
            opened,
            filled,
            accepted,
            submitted,
            reserved,
            approved,
        ]
    assert approved.causation_id == approve.command_id
    assert approved.suggestion_id == generated.suggestion.suggestion_id
    assert _causes(flow, check) == [check, generated]
    assert released.causation_id == opened.event_id
    by_order = {e.order_id: e for e in exits}
    for sent in exit_submitted:
        assert flow.by_id(sent.causation_id) == by_order[sent.order_id]
    for ack in exit_accepted:
        (sent,) = (s for s in exit_submitted if s.order_id == ack.order_id)
        assert ack.causation_id == sent.event_id
    flow_events: list[Event] = [
        generated,
        check,
        approved,
        reserved,
        submitted,
        accepted,
        filled,
        opened,
        *exits,
        *exit_submitted,
        *exit_accepted,
        released,
    ]
    correlation = generated.correlation_id
    assert {e.correlation_id for e in flow_events} == {correlation}

    # --- 4. The audit log: everything recorded, the chain in position order -----------
    last = await _recorded_everything(flow)
    chain = await flow.bus.request(
        GetCausalChain(account_id=ACCOUNT, chain_correlation_id=correlation, requested_by=USER),
        EventPageReply,
    )
    assert chain.next_after_position is None
    positions = [r.position for r in chain.events]
    assert positions == sorted(positions)
    assert all(r.valid for r in chain.events)
    recorded = {r.event_id: r.position for r in chain.events}
    collected = {e.event_id for e in flow.events.events if e.correlation_id == correlation}
    assert set(recorded) == collected
    assert {e.event_id for e in flow_events} <= set(recorded)
    for event in flow_events:  # every cause was recorded before its effect
        if event.causation_id in recorded:
            assert recorded[event.causation_id] < recorded[event.event_id]

    async with await psycopg.AsyncConnection.connect(flow.dsn, autocommit=True) as conn:
        report = await verify_chain(conn)
    assert report.ok, report.summary()
    assert report.rows_checked >= last  # gapless from 1: every message of the stream

    result = await replay_account(flow.dsn, ACCOUNT)
    assert result.events_skipped == 0
    suggestions = result.fold.state(SUGGESTIONS).suggestions
    assert suggestions[sid].status is SuggestionStatus.APPROVED
    orders = result.fold.state(ORDERS).orders
    assert orders[order_id].status is OrderStatus.FILLED
    assert all(orders[i].status is OrderStatus.WORKING for i in exit_ids)
    position = result.fold.state(POSITIONS).positions[opened.position_id]
    assert position.status is PositionStatus.OPEN
    assert position.max_risk == opened.max_risk
    assert {s.spread.kind: s.spread for s in position.spreads} == {
        s.kind: s for s in opened.spreads
    }
    assert {
        s.spread.kind: (s.exit_order_id, s.exit_purpose, s.exit_limit_price)
        for s in position.spreads
    } == {kind: (e.order_id, e.purpose, e.limit_price) for kind, e in by_kind.items()}
    usage = result.fold.state(RISK)
    assert usage.open_positions == 1
    assert usage.open_positions_max_risk == opened.max_risk
    assert usage.reserved_risk == 0
    assert usage.used_risk == opened.max_risk
    reservation = usage.reservations[reserved.reservation_id]
    assert reservation.status is ReservationStatus.RELEASED
    assert reservation.release_reason is ReleaseReason.FILLED
    assert not any(r.status is ReservationStatus.PENDING for r in usage.reservations.values())

    # --- 5. The broker: one opening order for the decision, positions = the legs -------
    opening = await broker_orders(flow.simulator, submitted.client_tag)
    assert [(o["status"], str(o["id"])) for o in opening] == [("Filled", accepted.broker_order_id)]
    everything = await broker_orders(flow.simulator)
    assert sorted((o["status"], o["time-in-force"]) for o in everything) == [
        ("Filled", "Day"),
        ("Live", "GTC"),
        ("Live", "GTC"),
        ("Live", "GTC"),
    ]
    assert {o["external-identifier"] for o in everything if o["status"] == "Live"} == {
        s.client_tag for s in exit_submitted
    }
    expected: dict[str, int] = {}
    for spread in opened.spreads:
        expected[spread.short_symbol] = expected.get(spread.short_symbol, 0) - spread.quantity
        expected[spread.long_symbol] = expected.get(spread.long_symbol, 0) + spread.quantity
    async with BrokerAdapter(
        broker_settings(flow.simulator), StaticCredentials({ACCOUNT: CREDENTIALS})
    ) as adapter:
        held = await adapter.get_positions(ACCOUNT)
    assert {p.symbol: p.quantity for p in held} == expected
