"""Balances of every linked account, published as BalanceUpdated when they change.

Each linked account (of this process's trading mode) gets an account stream whose
balance pushes are followed as they come, plus a REST read every
``balances_interval_s`` so a quiet or broken stream is never the only source. Accounts
unlinked since the last poll lose their stream. Whether a report is worth an event is
the core's decision (`core.balances`: only when a figure changed).

BalanceUpdated is published straight to the bus, not through the `Publisher`'s outbox:
when the publish fails the figures are not recorded as published, so the next poll
publishes them again instead of losing the change.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from libs.broker.models import Balances
from libs.broker.streaming import AccountStream, Subscription
from libs.contracts.account import BalanceUpdated
from libs.contracts.envelope import new_event_id
from libs.contracts.errors import SenexError
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from libs.runtime.log import get_logger
from services.market_data import SERVICE
from services.market_data.broker_link import BrokerLink
from services.market_data.core.balances import BalanceChanges, BalanceFigures
from services.market_data.core.cadence import Cadence


class AccountBalances:
    """An account stream per linked account, and the last figures published of each."""

    def __init__(self, interval_s: float, *, clock: Clock, broker: BrokerLink, bus: Bus) -> None:
        self._clock = clock
        self._broker = broker
        self._bus = bus
        self._log = get_logger(SERVICE)
        self._cadence = Cadence(timedelta(seconds=interval_s))
        self._streams: dict[str, tuple[AccountStream, asyncio.Task[None]]] = {}
        self._changes = BalanceChanges()

    def due(self, now: datetime) -> bool:
        """Whether a poll is due (whether or not the market is open)."""
        return self._cadence.due(now)

    async def poll(self) -> None:
        """Follow every linked account: a balance stream each, and a REST poll now."""
        mode = self._broker.link_mode()
        links = await self._broker.vault.links()
        accounts = {link.account_number for link in links if link.mode is mode}
        for gone in set(self._streams) - accounts:
            stream, task = self._streams.pop(gone)
            task.cancel()
            await stream.aclose()
            self._changes.forget(gone)
        for account in sorted(accounts):
            try:
                await self._follow(account)
            except SenexError as exc:  # one account's failure must not stop the others
                self._log.warning(
                    "balance poll failed", account=account, kind=exc.kind.value, error=exc.message
                )

    async def _follow(self, account: str) -> None:
        adapter = self._broker.adapter
        if account not in self._streams:
            session = await adapter.session_for(account)
            stream = AccountStream(account, session, clock=self._clock)
            stream.start()
            task = asyncio.create_task(self._pump(stream.balances()), name=f"md-balances-{account}")
            self._streams[account] = (stream, task)
        await self._publish(await adapter.get_balances(account))

    async def _pump(self, sub: Subscription[Balances]) -> None:
        async for balances in sub:
            try:
                await self._publish(balances)
            except Exception:  # keep following the account
                self._log.exception("balance update failed", account=balances.account_number)

    async def _publish(self, balances: Balances) -> None:
        account = balances.account_number
        figures = BalanceFigures.of(balances)
        if not self._changes.should_publish(account, figures):
            return
        event = BalanceUpdated(
            occurred_at=self._clock.now(),
            producer=SERVICE,
            account_id=account,
            correlation_id=new_event_id(),
            derivative_buying_power=balances.derivative_buying_power,
            net_liquidating_value=balances.net_liquidating_value,
            cash_balance=balances.cash_balance,
            equity_buying_power=balances.equity_buying_power,
            maintenance_requirement=balances.maintenance_requirement,
            broker_updated_at=balances.updated_at,
        )
        # Published directly (not via the outbox) so a failed publish is retried next poll.
        await self._bus.publish(event)
        self._changes.published(account, figures)

    async def close(self) -> None:
        """Stop following every account."""
        for stream, task in self._streams.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await stream.aclose()
        self._streams.clear()
