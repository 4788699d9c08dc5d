"""The broker's dry run of an opening order, retried when it fails transiently.

`BrokerDryRun` owns the risk service's broker adapter: built at start from the
`BrokerWiring` the composition root hands in (settings and credentials, by default the
environment's and the vault's), closed at stop. `retry_delay` is the pure backoff rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from libs.broker.adapter import BrokerAdapter
from libs.broker.models import DryRunResult
from libs.broker.wiring import BrokerWiring
from libs.contracts.errors import SenexError
from libs.domain.orders import OrderRequest
from libs.runtime.log import get_logger
from services.risk.settings import RiskSettings
from services.risk.state import SERVICE


def retry_delay(backoff: Sequence[float], attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based); the last value repeats
    and no backoff at all means none."""
    delays = tuple(backoff) or (0.0,)
    return delays[min(attempt, len(delays)) - 1]


class BrokerDryRun:
    """The broker's verdict on an order: its buying-power effect and any errors."""

    def __init__(self, settings: RiskSettings, broker: BrokerWiring) -> None:
        self._settings = settings
        self._broker = broker
        self._adapter: BrokerAdapter | None = None
        self._log = get_logger(SERVICE)

    async def open(self, database_url: str) -> None:
        """Build the broker adapter (credentials from the vault at ``database_url`` unless
        the wiring gives its own)."""
        self._adapter = await self._broker.adapter(database_url)

    async def aclose(self) -> None:
        """Close the adapter (nothing to do if it was never opened)."""
        if self._adapter is not None:
            await self._adapter.aclose()

    async def dry_run(self, account_id: str, request: OrderRequest) -> DryRunResult:
        """The broker's dry run, retried a few times when it fails transiently."""
        assert self._adapter is not None, "dry run before open"
        attempts = self._settings.dry_run_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._adapter.dry_run(account_id, request)
            except SenexError as exc:
                if not exc.kind.is_transient or attempt == attempts:
                    raise
                delay = retry_delay(self._settings.dry_run_backoff_s, attempt)
                self._log.warning(
                    "dry run failed; retrying",
                    account_id=account_id,
                    attempt=attempt,
                    kind=exc.kind.value,
                    error=exc.message,
                    delay_s=delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")
