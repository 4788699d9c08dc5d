"""The broker sync: what the broker holds against what the app expects, flagged.

Every ``sync_interval_s`` business seconds per account with active positions, at once
after its account stream reconnected or reported a position change, and on
``SyncPositions``. A finding of a periodic read is only flagged when a second read
``sync_settle_s`` real seconds later finds exactly the same (a fill in flight makes the
broker differ for a moment); a person asking is answered from one read. The monitor
never edits the broker: the sync only flags (``PositionNeedsAttention``), once per
finding, and leaves holdings no position accounts for to a human.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from structlog.stdlib import BoundLogger

from libs.broker.adapter import BrokerAdapter
from libs.broker.feeds import AccountFeeds
from libs.broker.models import BrokerPosition
from libs.contracts.commands import SyncPositions, SyncPositionsReply
from libs.contracts.envelope import Event
from libs.contracts.errors import SenexError
from libs.contracts.positions import AttentionReason, PositionNeedsAttention
from libs.runtime.following import ServiceShell
from services.position_monitor.closing import FillCloser
from services.position_monitor.core import SyncFinding, diff_broker_positions, is_new_finding
from services.position_monitor.metrics import MonitorCounters
from services.position_monitor.projection import PositionRecord
from services.position_monitor.queries import position_views
from services.position_monitor.settings import MonitorSettings
from services.position_monitor.state import MonitorState
from services.position_monitor.syncing import app_positions, broker_holdings, confirmed


@dataclass(frozen=True)
class PendingSync:
    """Findings of a first broker read, waiting for the confirming second read."""

    findings: list[SyncFinding]
    confirm_at: float
    """Monotonic real time of the second read."""


class SyncRead(Enum):
    """The read an account's sync makes in this pass."""

    FIRST = "first"
    """A periodic (or asked-for) read; findings wait for confirmation."""
    CONFIRM = "confirm"
    """The second read of pending findings; what it finds again is flagged."""


def sync_accounts(state: MonitorState) -> list[str]:
    """The accounts with positions the broker should hold (sorted)."""
    return sorted(a for a, book in state.books.items() if app_positions(book))


def next_read(
    pending: PendingSync | None,
    asked: bool,
    due_at: datetime | None,
    now: datetime,
    monotonic: float,
) -> SyncRead | None:
    """The read due for an account now, if any: the confirmation of ``pending`` once its
    time has come (nothing else meanwhile), else a first read when ``asked`` (a stream
    event) or due (never synced, or ``due_at`` reached)."""
    if pending is not None:
        return SyncRead.CONFIRM if monotonic >= pending.confirm_at else None
    if asked or due_at is None or now >= due_at:
        return SyncRead.FIRST
    return None


def new_findings(
    state: MonitorState, account: str, findings: Iterable[SyncFinding]
) -> list[tuple[SyncFinding, PositionRecord]]:
    """The findings not flagged yet (with their position; unknown positions dropped)."""
    found: list[tuple[SyncFinding, PositionRecord]] = []
    for finding in findings:
        record = state.position(account, finding.position_id)
        if record is None:
            continue
        attention = record.attention
        if is_new_finding(
            finding,
            attention.reason if attention is not None else None,
            attention.held_legs if attention is not None else (),
        ):
            found.append((finding, record))
    return found


def attention_fields(finding: SyncFinding, record: PositionRecord) -> dict[str, Any]:
    """The payload of the ``PositionNeedsAttention`` flagging ``finding``."""
    gone = finding.reason is AttentionReason.GONE_AT_BROKER
    return {
        "position_id": finding.position_id,
        "underlying": finding.underlying,
        "reason": finding.reason,
        "message": finding.message,
        # Gone: nothing left to manage. A mismatch keeps its exits working (closing
        # orders can only close) while a human looks.
        "app_managed": False if gone else record.app_managed,
        "active": finding.active,
        "held_legs": finding.held_legs,
    }


class SyncRequests:
    """Accounts whose next pass syncs at once (a position change, a reconnect)."""

    def __init__(self, poke: Callable[[], None]) -> None:
        """``poke`` wakes the decision loop."""
        self._accounts: set[str] = set()
        self._poke = poke

    def __contains__(self, account: object) -> bool:
        return account in self._accounts

    def add(self, account: str) -> None:
        """Sync ``account`` at its next read."""
        self._accounts.add(account)

    def discard(self, account: str) -> None:
        """``account``'s read is under way."""
        self._accounts.discard(account)

    async def position_changed(self, account: str, _position: BrokerPosition) -> None:
        """A position notification of the account stream: sync soon (confirmed as usual)."""
        self.add(account)
        self._poke()


class BrokerSync:
    """Syncs the accounts with the broker; answers ``SyncPositions``."""

    def __init__(
        self,
        shell: ServiceShell,
        state: MonitorState,
        *,
        adapter: BrokerAdapter,
        feeds: AccountFeeds[BrokerPosition],
        requests: SyncRequests,
        closer: FillCloser,
        lock: asyncio.Lock,
        settings: MonitorSettings,
        counters: MonitorCounters,
        log: BoundLogger,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``lock`` is the decision loop's (``SyncPositions`` decides under it);
        ``monotonic`` replaces the real-time clock of the confirmation (tests)."""
        self._shell = shell
        self._state = state
        self._adapter = adapter
        self._feeds = feeds
        self._requests = requests
        self._closer = closer
        self._lock = lock
        self._settings = settings
        self._counters = counters
        self._log = log
        self._monotonic = monotonic
        self._next_sync: dict[str, datetime] = {}
        self._pending: dict[str, PendingSync] = {}

    async def run(self, now: datetime) -> None:
        """The pass's reads: every account's stream followed, its due read made."""
        for account in sync_accounts(self._state):
            await self._follow(account)
            if self._feeds.reconnected(account):
                self._requests.add(account)
            pending = self._pending.get(account)
            try:
                read = next_read(
                    pending,
                    account in self._requests,
                    self._next_sync.get(account),
                    now,
                    self._monotonic(),
                )
                if read is SyncRead.CONFIRM:
                    assert pending is not None
                    del self._pending[account]
                    second = await self._diff(account)
                    await self._flag(account, confirmed(pending.findings, second))
                elif read is SyncRead.FIRST:
                    self._requests.discard(account)
                    self._next_sync[account] = now + self._interval
                    first = await self._diff(account)
                    if first:
                        self._pending[account] = PendingSync(
                            first, self._monotonic() + self._settings.sync_settle_s
                        )
            except SenexError as exc:
                self._log.warning(
                    "broker sync failed", account_id=account, kind=exc.kind.value, error=exc.message
                )

    async def sync_positions(self, command: SyncPositions) -> SyncPositionsReply:
        """Read the broker now and flag what differs (one read: a person asked)."""
        account = command.account_id
        async with self._lock:
            await self._closer.close_filled()  # fills already reported are booked first
            synced_at = self._shell.clock.now()
            findings = await self._diff(account)
            await self._flag(account, findings)
            self._next_sync[account] = synced_at + self._interval
        return SyncPositionsReply(
            positions=position_views(self._state, account, False), synced_at=synced_at
        )

    @property
    def _interval(self) -> timedelta:
        return timedelta(seconds=self._settings.sync_interval_s)

    async def _follow(self, account: str) -> None:
        try:
            await self._feeds.ensure(account)
        except SenexError as exc:
            self._log.warning(
                "no account stream", account_id=account, kind=exc.kind.value, error=exc.message
            )

    async def _diff(self, account: str) -> list[SyncFinding]:
        """Read the broker now; the findings for ``account`` (unowned holdings logged)."""
        held = broker_holdings(await self._adapter.get_positions(account))
        diff = diff_broker_positions(app_positions(self._state.book(account)), held)
        for unowned in diff.unowned:
            self._log.info(
                "broker holds an option no position accounts for (not adopted)",
                account_id=account,
                symbol=unowned.symbol,
                quantity=unowned.quantity,
            )
        return list(diff.findings)

    async def _flag(self, account: str, findings: Sequence[SyncFinding]) -> None:
        events: list[Event] = []
        for finding, record in new_findings(self._state, account, findings):
            events.append(
                PositionNeedsAttention(
                    **self._shell.envelope(account), **attention_fields(finding, record)
                )
            )
            self._counters.finding_flagged(finding.reason)
            self._log.warning(
                "position needs attention after the broker sync",
                account_id=account,
                position_id=str(finding.position_id),
                reason=finding.reason.value,
                message=finding.message,
            )
        await self._shell.publish(*events)
