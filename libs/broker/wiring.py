"""How a service reaches the broker: its settings and where its credentials come from.

A composition root hands a `BrokerWiring` to the service it builds. By default both come
from the environment and the credentials vault in PostgreSQL; a test gives fixed settings
and `StaticCredentials` instead, with nothing else of the service changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.broker.adapter import BrokerAdapter, CredentialsSource
from libs.broker.credentials import VaultCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault


@dataclass(frozen=True)
class BrokerWiring:
    """The broker settings and credentials a service's adapter uses (None: defaults)."""

    settings: BrokerSettings | None = None
    credentials: CredentialsSource | None = None

    def resolved_settings(self) -> BrokerSettings:
        """The given settings, else the environment's."""
        return self.settings if self.settings is not None else BrokerSettings()

    async def adapter(
        self, database_url: str, *, vault: CredentialsVault | None = None
    ) -> BrokerAdapter:
        """A broker adapter: the given credentials, else the vault (``vault`` when the
        caller has it open already, else the one at ``database_url``)."""
        settings = self.resolved_settings()
        credentials = self.credentials
        if credentials is None:
            if vault is None:
                vault = await CredentialsVault.open(database_url, settings)
            credentials = VaultCredentials(vault, settings)
        return BrokerAdapter(settings, credentials)
