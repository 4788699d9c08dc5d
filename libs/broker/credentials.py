"""Where a service's broker adapter finds an account's credentials."""

from __future__ import annotations

from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault
from libs.contracts.errors import NotFound
from libs.runtime.settings import TradingMode


class VaultCredentials:
    """The vault's credentials; in paper mode an unlinked account gets the simulator's
    default customer, so paper trading works before anyone links an account.

    In live mode an unlinked account stays NOT_FOUND: the real broker is never reached
    with credentials nobody linked.
    """

    def __init__(self, vault: CredentialsVault, settings: BrokerSettings) -> None:
        self._vault = vault
        self._settings = settings

    async def credentials_for(self, account_number: str) -> BrokerCredentials:
        """The account's credentials (NOT_FOUND when unlinked in live mode)."""
        try:
            return await self._vault.credentials_for(account_number)
        except NotFound:
            if self._settings.mode is not TradingMode.PAPER:
                raise
            return BrokerCredentials(
                client_secret=self._settings.paper_client_secret,
                refresh_token=self._settings.paper_refresh_token,
            )
