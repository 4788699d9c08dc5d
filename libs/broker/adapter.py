"""`BrokerAdapter`: the async broker API the services call.

Every call goes through `_call`, which binds a `CallTrace`, refreshes the token ahead of
expiry, retries once after a 401 with a fresh token, and translates any failure into a
typed `SenexError` (`libs.broker.errors`). Retrying transient failures is the caller's
decision (DOMAIN.md 5), so nothing else is retried here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Protocol, TypeVar

import httpx2
from tastytrade.account import Account
from tastytrade.instruments import NestedOptionChain
from tastytrade.metrics import get_market_metrics, get_risk_free_rate
from tastytrade.order import PlacedOrder

from libs.broker.errors import CURRENT_TRACE, CallTrace, Operation, is_auth_refusal, translate
from libs.broker.mapping import (
    UnmappableOrder,
    account_from_sdk,
    balances_from_sdk,
    chain_from_sdk,
    dry_run_from_sdk,
    metrics_from_sdk,
    order_from_sdk,
    order_to_sdk,
    position_from_sdk,
)
from libs.broker.models import (
    Balances,
    BrokerAccount,
    BrokerCredentials,
    BrokerOrder,
    BrokerPosition,
    DryRunResult,
    MarketMetrics,
    OptionChain,
    RateSource,
    RiskFreeRate,
)
from libs.broker.session import BrokerSession
from libs.broker.settings import BrokerSettings
from libs.contracts.errors import (
    ApiError,
    AuthFailed,
    BrokerError,
    NotFound,
    OrderRejectedError,
    ValidationFailed,
)
from libs.contracts.execution import OrderStatus
from libs.domain.orders import OrderRequest, check_client_tag
from libs.runtime.log import get_logger

T = TypeVar("T")

_log = get_logger("broker")

#: Pages of order history searched for a client tag (newest first), 100 orders each.
TAG_LOOKUP_PAGES = 5
_PAGE_SIZE = 100


class CredentialsSource(Protocol):
    """Where the adapter gets an account's credentials (the vault, or a test's mapping)."""

    async def credentials_for(self, account_number: str) -> BrokerCredentials:
        """The credentials of ``account_number``; raises NOT_FOUND when unlinked."""
        ...


class StaticCredentials:
    """Credentials held in memory, keyed by account number (tests, `senex account link`)."""

    def __init__(self, by_account: dict[str, BrokerCredentials]) -> None:
        self._by_account = dict(by_account)

    def __repr__(self) -> str:
        return f"StaticCredentials(accounts={sorted(self._by_account)})"

    async def credentials_for(self, account_number: str) -> BrokerCredentials:
        """The stored pair, or NOT_FOUND."""
        try:
            return self._by_account[account_number]
        except KeyError:
            raise NotFound(f"no credentials for account {account_number}") from None


class BrokerAdapter:
    """Broker operations per account, one SDK session per account, typed errors."""

    def __init__(
        self,
        settings: BrokerSettings,
        credentials: CredentialsSource,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network for every session (tests)."""
        self._settings = settings
        self._transport = transport
        self._credentials = credentials
        self._sessions: dict[str, BrokerSession] = {}
        # Account metadata rarely changes; fetching it once saves a request per call.
        self._accounts: dict[str, Account] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"BrokerAdapter(mode={self._settings.mode.value}, accounts={sorted(self._sessions)})"

    async def __aenter__(self) -> BrokerAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every session."""
        sessions, self._sessions = list(self._sessions.values()), {}
        self._accounts.clear()
        for session in sessions:
            await session.aclose()

    # --- sessions ---------------------------------------------------------------------

    async def session_for(self, account_number: str) -> BrokerSession:
        """The account's session, opened on first use from its credentials."""
        session = self._sessions.get(account_number)
        if session is not None:
            return session
        lock = self._opening.setdefault(account_number, asyncio.Lock())
        async with lock:
            session = self._sessions.get(account_number)
            if session is None:
                credentials = await self._credentials.credentials_for(account_number)
                session = BrokerSession(credentials, self._settings, transport=self._transport)
                self._sessions[account_number] = session
        return session

    def expire_session(self, account_number: str) -> None:
        """Forget the account's access token: the next call refreshes it first."""
        session = self._sessions.get(account_number)
        if session is not None:
            session.expire()

    async def _call(
        self,
        session: BrokerSession,
        operation: Operation,
        action: Callable[[], Awaitable[T]],
    ) -> T:
        trace = CallTrace()
        token = CURRENT_TRACE.set(trace)
        try:
            try:
                await session.ensure_fresh()
                seen = session.sdk.session_expiration
                try:
                    return await action()
                except Exception:
                    # A 401 on a call (not on the token endpoint) means the token went
                    # stale early: refresh once and repeat; a second 401 is final.
                    if trace.status != 401 or trace.path == "/oauth/token":
                        raise
                _log.info("broker answered 401, refreshing the session once")
                await session.force_refresh(seen)
                trace.status = None
                return await action()
            except Exception as exc:
                error = translate(exc, trace, operation)
                if is_auth_refusal(trace) and not isinstance(error, AuthFailed):
                    error = AuthFailed(error.message, details=error.details)
                raise error from exc
        finally:
            CURRENT_TRACE.reset(token)

    async def _account(self, account_number: str) -> tuple[BrokerSession, Account]:
        session = await self.session_for(account_number)
        account = self._accounts.get(account_number)
        if account is None:
            account = await self._call(
                session, Operation.READ, lambda: Account.get(session.sdk, account_number)
            )
            self._accounts[account_number] = account
        return session, account

    # --- accounts and market information -------------------------------------------------

    async def verify_credentials(self, credentials: BrokerCredentials) -> list[BrokerAccount]:
        """The open accounts ``credentials`` can trade (AUTH_FAILED when refused).

        Uses a throwaway session: this is how a link is checked before it is stored.
        """
        session = BrokerSession(credentials, self._settings, transport=self._transport)
        try:
            accounts = await self._call(session, Operation.READ, lambda: Account.get(session.sdk))
        finally:
            await session.aclose()
        return [account_from_sdk(a) for a in accounts]

    async def list_accounts(self, account_number: str) -> list[BrokerAccount]:
        """Every open account reachable with ``account_number``'s credentials."""
        session = await self.session_for(account_number)
        accounts = await self._call(session, Operation.READ, lambda: Account.get(session.sdk))
        return [account_from_sdk(a) for a in accounts]

    async def get_balances(self, account_number: str) -> Balances:
        """Buying power, net liquidation and cash (USD)."""
        session, account = await self._account(account_number)
        balance = await self._call(
            session, Operation.READ, lambda: account.get_balances(session.sdk)
        )
        return balances_from_sdk(balance)

    async def get_positions(
        self, account_number: str, underlyings: Iterable[str] | None = None
    ) -> list[BrokerPosition]:
        """Open positions, optionally only those of ``underlyings``."""
        session, account = await self._account(account_number)
        wanted = list(underlyings) if underlyings is not None else None
        positions = await self._call(
            session,
            Operation.READ,
            lambda: account.get_positions(session.sdk, underlying_symbols=wanted),
        )
        return [position_from_sdk(p) for p in positions if p.quantity != 0]

    async def get_option_chain(self, account_number: str, underlying: str) -> OptionChain:
        """The nested option chain of ``underlying``."""
        session = await self.session_for(account_number)
        chains = await self._call(
            session, Operation.READ, lambda: NestedOptionChain.get(session.sdk, underlying)
        )
        try:
            return chain_from_sdk(chains, underlying)
        except ValueError as exc:
            raise NotFound(str(exc)) from None

    async def get_market_metrics(
        self, account_number: str, symbols: Sequence[str]
    ) -> list[MarketMetrics]:
        """IV rank, percentile and IV index of each symbol."""
        session = await self.session_for(account_number)
        infos = await self._call(
            session, Operation.READ, lambda: get_market_metrics(session.sdk, list(symbols))
        )
        return [metrics_from_sdk(i) for i in infos]

    async def get_risk_free_rate(self, account_number: str) -> RiskFreeRate:
        """The broker's risk-free rate, else the configured fallback (4.5 %).

        Any broker failure falls back: pricing must not stop for want of a rate.
        """
        fallback = RiskFreeRate(
            rate=self._settings.fallback_risk_free_rate, source=RateSource.FALLBACK
        )
        try:
            session = await self.session_for(account_number)
            rate = await self._call(
                session, Operation.READ, lambda: get_risk_free_rate(session.sdk)
            )
        except BrokerError as exc:
            _log.warning("risk-free rate unavailable, using the fallback", kind=exc.kind.value)
            return fallback
        if not rate.is_finite() or not 0 <= rate <= 1:
            _log.warning("broker risk-free rate out of range, using the fallback")
            return fallback
        return RiskFreeRate(rate=rate, source=RateSource.BROKER)

    # --- orders ---------------------------------------------------------------------------

    async def dry_run(self, account_number: str, request: OrderRequest) -> DryRunResult:
        """The broker's verdict and buying-power effect for ``request``; nothing is placed."""
        order = order_to_sdk(request)
        session, account = await self._account(account_number)
        response = await self._call(
            session, Operation.DRY_RUN, lambda: account.place_order(session.sdk, order)
        )
        return dry_run_from_sdk(response)

    async def place_order(self, account_number: str, request: OrderRequest) -> BrokerOrder:
        """Place ``request``; ORDER_REJECTED (with the broker's reason) when refused.

        On BROKER_TIMEOUT the order may still exist: look it up with
        `find_order_by_client_tag` before sending it again.
        """
        check_client_tag(request.client_tag)
        order = order_to_sdk(request)
        session, account = await self._account(account_number)
        response = await self._call(
            session,
            Operation.ORDER,
            lambda: account.place_order(session.sdk, order, dry_run=False),
        )
        placed = self._map(response.order)
        if placed.status is OrderStatus.REJECTED:
            raise OrderRejectedError(
                placed.reject_reason or "rejected by the broker",
                details={"broker_order_id": placed.broker_order_id},
            )
        return placed

    async def replace_order(
        self, account_number: str, broker_order_id: str, request: OrderRequest
    ) -> BrokerOrder:
        """Re-price a working order; the broker answers with the replacement order.

        ``request`` carries the same legs, the new price and the replacement decision's
        client tag.
        """
        check_client_tag(request.client_tag)
        order = order_to_sdk(request)
        order_id = _broker_id(broker_order_id)
        session, account = await self._account(account_number)
        placed = await self._call(
            session,
            Operation.ORDER,
            lambda: account.replace_order(session.sdk, order_id, order),
        )
        return self._map(placed)

    async def cancel_order(self, account_number: str, broker_order_id: str) -> None:
        """Ask the broker to cancel; the order's status tells when it is cancelled."""
        order_id = _broker_id(broker_order_id)
        session, account = await self._account(account_number)
        await self._call(
            session, Operation.ORDER, lambda: account.delete_order(session.sdk, order_id)
        )

    async def get_order(self, account_number: str, broker_order_id: str) -> BrokerOrder:
        """One order by the broker's id (NOT_FOUND when the account has none such)."""
        order_id = _broker_id(broker_order_id)
        session, account = await self._account(account_number)
        order = await self._call(
            session, Operation.READ, lambda: account.get_order(session.sdk, order_id)
        )
        return self._map(order)

    async def get_live_orders(self, account_number: str) -> list[BrokerOrder]:
        """Today's orders (working and finished); orders Senex cannot map are skipped."""
        session, account = await self._account(account_number)
        orders = await self._call(
            session, Operation.READ, lambda: account.get_live_orders(session.sdk)
        )
        return self._map_many(orders)

    async def find_order_by_client_tag(self, account_number: str, tag: str) -> BrokerOrder | None:
        """The order sent with client tag ``tag``, or None if the broker has none.

        Looks at today's orders first, then at the newest pages of the order history.
        When several carry the tag, a live one wins, then the newest.
        """
        session, account = await self._account(account_number)
        live = await self._call(
            session, Operation.READ, lambda: account.get_live_orders(session.sdk)
        )
        found = [o for o in live if o.external_identifier == tag]

        async def history_page(page: int) -> list[PlacedOrder]:
            return await account.get_order_history(
                session.sdk, per_page=_PAGE_SIZE, page_offset=page, sort="Desc"
            )

        for page in range(TAG_LOOKUP_PAGES):
            if found:
                break
            orders = await self._call(session, Operation.READ, partial(history_page, page))
            found = [o for o in orders if o.external_identifier == tag]
            if len(orders) < _PAGE_SIZE:
                break
        mapped = self._map_many(found)
        if not mapped:
            return None
        mapped.sort(key=lambda o: (o.is_live, o.updated_at), reverse=True)
        return mapped[0]

    @staticmethod
    def _map(order: PlacedOrder) -> BrokerOrder:
        try:
            return order_from_sdk(order)
        except (UnmappableOrder, ValueError) as exc:
            raise ApiError(f"the broker returned an order Senex cannot read: {exc}") from None

    @staticmethod
    def _map_many(orders: Iterable[PlacedOrder]) -> list[BrokerOrder]:
        mapped: list[BrokerOrder] = []
        for order in orders:
            try:
                mapped.append(order_from_sdk(order))
            except (UnmappableOrder, ValueError):
                _log.info("skipping a broker order Senex cannot map", broker_order_id=order.id)
        return mapped


def _broker_id(broker_order_id: str) -> int:
    try:
        return int(broker_order_id)
    except ValueError:
        raise ValidationFailed(
            f"broker order id {broker_order_id!r} is not a number", field="broker_order_id"
        ) from None
