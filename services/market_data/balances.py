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

from datetime import datetime, timedelta

from libs.broker.feeds import AccountFeeds
from libs.broker.models import Balances
from libs.contracts.account import BalanceUpdated
from libs.contracts.errors import SenexError
from libs.runtime.bus import Bus
from libs.runtime.clock import Clock
from libs.runtime.envelopes import Envelopes
from libs.runtime.log import get_logger
from services.market_data import SERVICE
from services.market_data.broker_link import BrokerLink
from services.market_data.core.balances import BalanceChanges, BalanceFigures
from services.market_data.core.cadence import Cadence


class AccountBalances:
    """An account stream per linked account, and the last figures published of each."""

    def __init__(
        self,
        interval_s: float,
        *,
        clock: Clock,
        broker: BrokerLink,
        bus: Bus,
        envelope: Envelopes,
    ) -> None:
        self._broker = broker
        self._bus = bus
        self._envelope = envelope
        self._log = get_logger(SERVICE)
        self._cadence = Cadence(timedelta(seconds=interval_s))
        self._feeds: AccountFeeds[Balances] = AccountFeeds(
            lambda: broker.adapter,
            lambda: clock,
            subscribe=lambda stream: stream.balances(),
            handle=self._pushed,
            name="md-balances",
            log=self._log,
        )
        self._changes = BalanceChanges()

    def due(self, now: datetime) -> bool:
        """Whether a poll is due (whether or not the market is open)."""
        return self._cadence.due(now)

    async def poll(self) -> None:
        """Follow every linked account: a balance stream each, and a REST poll now."""
        mode = self._broker.link_mode()
        links = await self._broker.vault.links()
        accounts = {link.account_number for link in links if link.mode is mode}
        for gone in self._feeds.accounts() - accounts:
            await self._feeds.drop(gone)
            self._changes.forget(gone)
        for account in sorted(accounts):
            try:
                await self._follow(account)
            except SenexError as exc:  # one account's failure must not stop the others
                self._log.warning(
                    "balance poll failed", account=account, kind=exc.kind.value, error=exc.message
                )

    async def _follow(self, account: str) -> None:
        await self._feeds.ensure(account)
        await self._publish(await self._broker.adapter.get_balances(account))

    async def _pushed(self, account: str, balances: Balances) -> None:
        """A balance push of ``account``'s stream (a failure is logged by the feed)."""
        await self._publish(balances)

    async def _publish(self, balances: Balances) -> None:
        account = balances.account_number
        figures = BalanceFigures.of(balances)
        if not self._changes.should_publish(account, figures):
            return
        event = BalanceUpdated(
            **self._envelope(account),
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
        await self._feeds.close()
