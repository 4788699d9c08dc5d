"""The position monitor's composition root: what it depends on, and its parts built.

`MonitorDependencies` is what a caller chooses (the business clock, settings, the SMTP
server, how to reach the broker); everything left None comes from the environment.
`assemble` is the one place that builds the broker adapter, the e-mail notifier, the
state and the collaborating parts, and hands each what it needs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from libs.broker.adapter import BrokerAdapter
from libs.broker.feeds import AccountFeeds
from libs.broker.models import BrokerPosition
from libs.broker.streaming import AccountStream, Subscription
from libs.broker.wiring import BrokerWiring
from libs.runtime.clock import Clock
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from libs.runtime.runner import ServiceContext
from services.position_monitor import SERVICE
from services.position_monitor.broker_sync import BrokerSync, SyncRequests
from services.position_monitor.closing import FillCloser
from services.position_monitor.exits import DailyRun, Exits, ManualClose
from services.position_monitor.loop import DecisionLoop
from services.position_monitor.marks import Marks
from services.position_monitor.metrics import MonitorCounters, PortfolioCollector
from services.position_monitor.notifications import Notifications
from services.position_monitor.notifier import EmailNotifier
from services.position_monitor.queries import Queries
from services.position_monitor.quotes import Quotes
from services.position_monitor.settings import MonitorSettings, SmtpSettings
from services.position_monitor.state import MonitorState


@dataclass(frozen=True)
class MonitorDependencies:
    """What the monitor is built with (None: from the environment)."""

    clock: Clock | None = None
    """The business clock; None: the runner's."""
    settings: MonitorSettings | None = None
    smtp: SmtpSettings | None = None
    broker: BrokerWiring = field(default_factory=BrokerWiring)
    """Broker settings and credentials; by default the environment's and the vault."""


@dataclass(frozen=True)
class MonitorParts:
    """The running monitor's parts (built at start, once connected)."""

    state: MonitorState
    adapter: BrokerAdapter
    notifier: EmailNotifier
    feeds: AccountFeeds[BrokerPosition]
    loop: DecisionLoop
    queries: Queries
    manual: ManualClose
    sync: BrokerSync
    notifications: Notifications


def _positions(stream: AccountStream) -> Subscription[BrokerPosition]:
    return stream.positions()


async def assemble(
    shell: ServiceShell, deps: MonitorDependencies, ctx: ServiceContext
) -> MonitorParts:
    """Every part of the monitor, for ``shell`` (connected); the notifier started."""
    settings = deps.settings or MonitorSettings()
    log = get_logger(SERVICE)
    state = MonitorState()
    adapter = await deps.broker.adapter(ctx.settings.database_url)
    registry = ctx.metrics.registry
    counters = MonitorCounters.register(registry)
    registry.register(PortfolioCollector(SERVICE, lambda: state))
    notifier = EmailNotifier(
        deps.smtp or SmtpSettings(),
        # The account's own address; SENEX_SMTP_RECIPIENT catches the rest.
        state.email_of,
        registry=registry,
    )
    await notifier.start()

    lock = asyncio.Lock()  # one decision at a time: the loop's passes and the commands
    wake = asyncio.Event()
    requests = SyncRequests(wake.set)
    feeds = AccountFeeds(
        lambda: adapter,
        lambda: shell.clock,
        subscribe=_positions,
        handle=requests.position_changed,
        name="monitor-positions",
        log=log,
    )
    quotes = Quotes(shell, state, settings, log)
    closer = FillCloser(shell, state, counters, log)
    exits = Exits(shell, state, counters, log)
    sync = BrokerSync(
        shell,
        state,
        adapter=adapter,
        feeds=feeds,
        requests=requests,
        closer=closer,
        lock=lock,
        settings=settings,
        counters=counters,
        log=log,
    )
    loop = DecisionLoop(
        lambda: shell.clock,
        quotes=quotes,
        closer=closer,
        marks=Marks(shell, state, quotes, exits),
        daily=DailyRun(state, exits, log),
        sync=sync,
        lock=lock,
        wake=wake,
        tick_s=settings.tick_s,
        log=log,
    )
    return MonitorParts(
        state=state,
        adapter=adapter,
        notifier=notifier,
        feeds=feeds,
        loop=loop,
        queries=Queries(state),
        manual=ManualClose(state, quotes, exits, lock),
        sync=sync,
        notifications=Notifications(shell, state, notifier, log),
    )
