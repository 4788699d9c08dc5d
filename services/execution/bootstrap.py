"""Execution's composition root: the one place building its parts and handing them in.

`ExecutionDependencies` is what a caller chooses (a test's clock, settings, the broker's
settings and credentials); everything else is built here, once the service is connected
(`assemble`): the broker adapter (`BrokerWiring`), the state, and the collaborating
objects, each given what it needs in its constructor. Only here do they meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.broker.adapter import BrokerAdapter
from libs.broker.feeds import AccountFeeds
from libs.broker.models import BrokerOrder
from libs.broker.streaming import AccountStream, Subscription
from libs.broker.wiring import BrokerWiring
from libs.contracts.positions import ExitOrderPlaced
from libs.contracts.risk import RiskReserved
from libs.runtime.clock import Clock
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from libs.runtime.reactions import Reactions
from libs.runtime.runner import ServiceContext
from services.execution.background import Background, Launcher
from services.execution.cancels import Canceller
from services.execution.commands import Commands
from services.execution.core import RetryPolicy
from services.execution.exits import Exits
from services.execution.metrics import ExecutionMetrics
from services.execution.opening import Opener
from services.execution.positions import Positions
from services.execution.reconciliation import Reconciler
from services.execution.recording import OrderLocks, Recorder
from services.execution.reporting import Reports
from services.execution.sending import Sender
from services.execution.settings import ExecutionSettings
from services.execution.state import ExecutionState
from services.execution.suspension import Suspension


@dataclass(frozen=True)
class ExecutionDependencies:
    """What the caller of `ExecutionService` chooses; None: the runner's / environment's."""

    clock: Clock | None = None
    settings: ExecutionSettings | None = None
    broker: BrokerWiring = field(default_factory=BrokerWiring)


@dataclass(frozen=True)
class Execution:
    """The built parts the service shell runs: state, reactions, commands, background."""

    settings: ExecutionSettings
    state: ExecutionState
    adapter: BrokerAdapter
    metrics: ExecutionMetrics
    reactions: Reactions
    commands: Commands
    reconciler: Reconciler
    feeds: AccountFeeds[BrokerOrder]
    background: Background


def _orders(stream: AccountStream) -> Subscription[BrokerOrder]:
    return stream.orders()


async def assemble(
    deps: ExecutionDependencies, ctx: ServiceContext, shell: ServiceShell
) -> Execution:
    """Build execution's parts for ``shell`` (connected: its clock is set, and what it
    publishes is folded into the state built here)."""
    settings = deps.settings if deps.settings is not None else ExecutionSettings()
    policy = RetryPolicy().scaled(settings.backoff_scale)
    adapter = await deps.broker.adapter(ctx.settings.database_url)
    clock = shell.clock
    log = get_logger(shell.name)
    metrics = ExecutionMetrics(ctx.metrics)
    state = ExecutionState()
    locks = OrderLocks()
    background = Background(log)
    launcher = Launcher(background, owns=shell.owns)
    recorder = Recorder(state, shell.publish, shell.envelope, metrics, launcher)
    suspension = Suspension(state, recorder, log)
    exits = Exits(state, recorder, locks, launcher, log)
    positions = Positions(state, recorder, exits, metrics, log)
    reports = Reports(state, recorder, locks, positions, log)
    canceller = Canceller(adapter, reports, log)
    sender = Sender(
        state=state,
        broker=adapter,
        policy=policy,
        clock=clock,
        reports=reports,
        canceller=canceller,
        suspension=suspension,
        metrics=metrics,
        log=log,
    )
    feeds: AccountFeeds[BrokerOrder] = AccountFeeds(
        lambda: adapter,
        lambda: clock,
        subscribe=_orders,
        handle=reports.on_notification,
        name="exec-orders",
        log=log,
    )
    # Sending leads back to deciding (a fill opens a position whose targets are sent).
    launcher.bind(drive=sender.drive, feeds=feeds)
    opener = Opener(
        state=state,
        recorder=recorder,
        reports=reports,
        locks=locks,
        launcher=launcher,
        clock=clock,
        metrics=metrics,
        log=log,
    )
    reconciler = Reconciler(
        state=state,
        broker=adapter,
        feeds=feeds,
        reports=reports,
        suspension=suspension,
        launcher=launcher,
        positions=positions,
        exits=exits,
        locks=locks,
        owns=shell.owns,
        interval_s=settings.reconcile_interval_s,
        log=log,
    )
    commands = Commands(
        state=state,
        recorder=recorder,
        locks=locks,
        launcher=launcher,
        canceller=canceller,
        suspension=suspension,
        exits=exits,
    )
    reactions = Reactions({RiskReserved: opener.on_reserved, ExitOrderPlaced: exits.on_decided})
    return Execution(
        settings=settings,
        state=state,
        adapter=adapter,
        metrics=metrics,
        reactions=reactions,
        commands=commands,
        reconciler=reconciler,
        feeds=feeds,
        background=background,
    )
