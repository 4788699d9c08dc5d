"""The market-data service's link to the broker: credentials, the account, its DXLink stream.

One linked account's session carries every quote and daily candle. Which account is
SENEX_MARKET_DATA_ACCOUNT, else the first account linked in the trading mode, else (paper
mode, nothing linked) the simulator's default customer, so paper trading has quotes
before anyone links an account. Until one is found, `status` says why: /health shows it
and MARKET_DATA_STALE / BROKER_UNAVAILABLE messages quote it, so a caller sees the cause
rather than a bare "no quote".
"""

from __future__ import annotations

from libs.broker.adapter import BrokerAdapter
from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.streaming import MarketStream
from libs.broker.vault import CredentialsVault
from libs.contracts.account import TradingMode as LinkMode
from libs.contracts.errors import BrokerUnavailable, SenexError
from libs.runtime.clock import Clock
from libs.runtime.log import get_logger
from libs.runtime.settings import TradingMode
from services.market_data import SERVICE
from services.market_data.settings import MarketDataSettings

#: The broker line of /health before the first connection attempt succeeded.
NOT_CONNECTED = "not connected yet"


class BrokerLink:
    """The vault, the adapter, the market-data account and its stream once connected.

    The vault and the adapter are handed in (`bootstrap.MarketDataDependencies`); the
    adapter's credentials are the vault's, which in paper mode also answer for the
    simulator's default customer when nothing is linked.
    """

    def __init__(
        self,
        settings: MarketDataSettings,
        broker_settings: BrokerSettings,
        *,
        vault: CredentialsVault,
        adapter: BrokerAdapter,
        clock: Clock,
    ) -> None:
        self._settings = settings
        #: The broker settings in use.
        self.broker_settings = broker_settings
        self._clock = clock
        self._log = get_logger(SERVICE)
        #: The credentials vault: which accounts are linked.
        self.vault = vault
        #: The broker adapter.
        self.adapter = adapter
        #: The market-data account, once chosen.
        self.account: str | None = None
        #: Its DXLink stream, once started.
        self.stream: MarketStream | None = None
        #: The broker line of /health: the account in use, or why there is none.
        self.status = NOT_CONNECTED

    def session(self) -> tuple[BrokerAdapter, str]:
        """The adapter and the market-data account, or BROKER_UNAVAILABLE with the reason."""
        if self.account is None:
            raise BrokerUnavailable(f"no broker session for market data: {self.status}")
        return self.adapter, self.account

    def link_mode(self) -> LinkMode:
        """The kind of linked account this process trades with (paper or live)."""
        return LinkMode.PAPER if self.broker_settings.mode is TradingMode.PAPER else LinkMode.LIVE

    async def connect(self) -> MarketStream | None:
        """Pick the market-data account and start its DXLink stream; None when there is none.

        The caller subscribes what the stream carries (candles, quote feeds).
        """
        account = await self._choose_account()
        if account is None:
            return None
        session = await self.adapter.session_for(account)
        stream = MarketStream(session, clock=self._clock)
        stream.start()
        self.stream = stream
        self.account = account
        self.status = f"ok (market data via account {account})"
        self._log.info("market data stream started", account=account)
        return stream

    async def _choose_account(self) -> str | None:
        """SENEX_MARKET_DATA_ACCOUNT, else the first linked account, else (paper) the default."""
        mode = self.link_mode()
        links = [link for link in await self.vault.links() if link.mode is mode]
        wanted = self._settings.account
        if wanted is not None:
            if any(link.account_number == wanted for link in links):
                return wanted
            self.status = f"account {wanted} (SENEX_MARKET_DATA_ACCOUNT) is not linked"
            self._log.warning("market-data account not linked; retrying", account=wanted)
            return None
        if links:
            return links[0].account_number
        if mode is LinkMode.PAPER:
            # The simulator's default customer, as `senex account link --paper` would use.
            credentials = BrokerCredentials(
                client_secret=self.broker_settings.paper_client_secret,
                refresh_token=self.broker_settings.paper_refresh_token,
            )
            try:
                accounts = await self.adapter.verify_credentials(credentials)
            except SenexError as exc:
                self.status = f"simulator unreachable: {exc.kind.value}: {exc.message}"
                raise
            if not accounts:
                self.status = "the simulator's default customer has no account"
                return None
            # Unlinked: in paper mode the vault's credentials answer for it with this pair.
            return accounts[0].account_number
        self.status = "no linked account"
        self._log.warning("no linked account for market data; retrying")
        return None

    def describe_stream(self) -> str:
        """The stream's state in a sentence, for stale reasons and error messages."""
        if self.stream is None:
            return f"stream not started ({self.status})"
        h = self.stream.health()
        text = f"stream {h.state.value}, {h.reconnects} reconnects"
        if h.last_error:
            text += f", last error {h.last_error_kind}: {h.last_error}"
        return text

    async def close_stream(self) -> None:
        """Close the DXLink stream, if one was started."""
        if self.stream is not None:
            await self.stream.aclose()

    async def close(self) -> None:
        """Close the adapter's broker sessions."""
        await self.adapter.aclose()
