"""The market-data service against real NATS, PostgreSQL and the broker simulator.

Business time is a `ManualClock` the tests move; the simulator keeps its own clock
(frozen with speed 0 where exact quote comparisons need it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerCredentials
from libs.broker.vault import CredentialsVault
from libs.contracts.account import BalanceUpdated, TradingMode
from libs.contracts.commands import (
    ChainSnapshotReply,
    GetChainSnapshot,
    GetMarketCondition,
    GetQuotes,
    MarketConditionReply,
    QuotesReply,
    WatchReply,
    WatchSymbols,
)
from libs.contracts.envelope import Event
from libs.contracts.errors import MarketDataStaleError
from libs.contracts.market import (
    BandPosition,
    MarketConditionChanged,
    MarketDataRecovered,
    MarketDataStale,
    QuoteReceived,
)
from libs.contracts.subjects import account_event_subject, token
from libs.contracts.symbols import OccSymbol, OptionType
from libs.eventlog.migrate import migrate
from libs.indicators.bands import bollinger
from libs.runtime import market_hours
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.servers import ServerProcess
from libs.runtime.settings import TradingMode as RuntimeMode
from services.market_data.service import MarketDataService
from services.simulator import market as sim_market
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from services.simulator.server import SimulatorServer
from tests.integration.market_data.helpers import (
    collect,
    control,
    eventually,
    running_service,
    set_price,
)
from tests.simulator_fixtures import SIM_START

ACCOUNT = DEFAULT_ACCOUNT_NUMBER
TODAY = date(2025, 6, 3)
SEED = 7  # the simulator fixture's seed


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture(scope="module")
def vault_key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(SIM_START)


@pytest.fixture
async def md(
    nats_server: ServerProcess,
    dsn: str,
    simulator: SimulatorServer,
    vault_key: bytes,
    clock: ManualClock,
) -> AsyncIterator[tuple[MarketDataService, Bus]]:
    async with running_service(
        nats_url=nats_server.url,
        database_url=dsn,
        server=simulator,
        vault_key=vault_key,
        clock=clock,
    ) as running:
        yield running


async def freeze(server: SimulatorServer) -> None:
    """Stop the simulator's clock so quotes stay put and compare exactly."""
    await control(server, "PUT", "/sim/clock", {"speed": 0})


async def snapshot(bus: Bus, *, complete: bool = False, **kwargs: object) -> ChainSnapshotReply:
    """A chain snapshot once the service has an underlying quote (and, when ``complete``,
    a quote for every strike of the window)."""

    async def attempt() -> ChainSnapshotReply | None:
        try:
            reply = await bus.request(
                GetChainSnapshot(account_id=ACCOUNT, **kwargs),
                ChainSnapshotReply,
            )
        except MarketDataStaleError:
            return None  # no underlying quote yet
        return None if complete and reply.missing else reply

    reply: ChainSnapshotReply = await eventually(attempt)
    return reply


async def sim_quote(server: SimulatorServer, symbol: str) -> tuple[Decimal, Decimal]:
    body = await control(server, "GET", f"/sim/quotes/{symbol}")
    return Decimal(body["bid"]), Decimal(body["ask"])


def expected_closes(underlying: str) -> tuple[Decimal, ...]:
    days: list[date] = []
    day = TODAY
    while len(days) < 19:
        day = market_hours.previous_session_before(day)
        days.append(day)
    return tuple(sim_market.model_close(SEED, underlying, d) for d in reversed(days))


def is_type(kind: type[Event], symbol: str | None = None) -> Callable[[Event], bool]:
    """A predicate: an event of ``kind`` (about ``symbol``, when given)."""
    return lambda e: (
        isinstance(e, kind) and (symbol is None or getattr(e, "symbol", None) == symbol)
    )


async def test_underlying_quotes_are_published_cached_and_health_reports_the_broker(
    nats_server: ServerProcess,
    dsn: str,
    simulator: SimulatorServer,
    vault_key: bytes,
    clock: ManualClock,
) -> None:
    await set_price(simulator, "QQQ", "500.00")
    await set_price(simulator, "SPY", "600.00")
    async with (
        collect(nats_server.url, "senex.md.*.QuoteReceived") as quotes,
        running_service(
            nats_url=nats_server.url,
            database_url=dsn,
            server=simulator,
            vault_key=vault_key,
            clock=clock,
        ) as (service, bus),
    ):
        event = await quotes.wait_for(is_type(QuoteReceived, "QQQ"))
        assert isinstance(event, QuoteReceived)
        assert (event.bid, event.ask) == (Decimal("499.99"), Decimal("500.01"))
        assert event.account_id is None
        assert event.occurred_at == clock.now()  # business time of receipt
        await quotes.wait_for(is_type(QuoteReceived, "SPY"))

        absent = OccSymbol.build("QQQ", date(2025, 12, 19), OptionType.PUT, Decimal(1))
        reply = await bus.request(
            GetQuotes(account_id=ACCOUNT, symbols=("QQQ", "SPY", absent)), QuotesReply
        )
        by_symbol = {q.symbol: q for q in reply.quotes}
        assert (by_symbol["QQQ"].bid, by_symbol["QQQ"].ask) == (
            Decimal("499.99"),
            Decimal("500.01"),
        )
        assert by_symbol["SPY"].mid == Decimal("600.00")
        assert reply.missing == (absent,)

        health = await service.health()
        assert health.healthy
        assert health.checks["broker"].startswith("ok")
        assert health.checks["dxlink"].startswith("CONNECTED")


async def test_chain_snapshot_matches_the_simulator_and_subscribes_new_strikes(
    md: tuple[MarketDataService, Bus], simulator: SimulatorServer
) -> None:
    _, bus = md
    await freeze(simulator)
    await set_price(simulator, "QQQ", "520.00")
    # The price moved the warm window: its new strikes are being subscribed.
    reply = await snapshot(bus, complete=True, underlying="QQQ", wait_seconds=5)
    assert reply.underlying_quote.mid == Decimal("520.00")
    assert reply.expirations, "the simulator lists weeklies 30-50 days out"
    for expiration in reply.expirations:
        assert 30 <= expiration.dte <= 50
        assert expiration.dte == (expiration.expiration - TODAY).days
        strikes = [s.strike for s in expiration.strikes]
        assert strikes == sorted(strikes)
        assert min(strikes) >= 500
        assert max(strikes) <= 540
    assert reply.missing == ()
    middle = reply.expirations[0].strikes[len(reply.expirations[0].strikes) // 2]
    assert middle.put is not None
    assert middle.call is not None
    assert (middle.put.bid, middle.put.ask) == await sim_quote(simulator, middle.put.symbol)
    assert (middle.call.bid, middle.call.ask) == await sim_quote(simulator, middle.call.symbol)

    # A window far from the default one: subscribed on demand, awaited, then answered.
    near = await snapshot(
        bus, underlying="QQQ", min_dte=0, max_dte=10, strike_range=Decimal(3), wait_seconds=10
    )
    assert near.expirations
    assert all(e.dte <= 10 for e in near.expirations)
    assert near.missing == ()
    put = near.expirations[0].strikes[0].put
    assert put is not None
    assert (put.bid, put.ask) == await sim_quote(simulator, put.symbol)


async def test_watch_symbols_streams_an_option_until_the_lease_ends(
    md: tuple[MarketDataService, Bus],
    nats_server: ServerProcess,
    simulator: SimulatorServer,
    clock: ManualClock,
) -> None:
    service, bus = md
    await freeze(simulator)
    await set_price(simulator, "QQQ", "500.00")
    option = OccSymbol.build("QQQ", date(2025, 8, 15), OptionType.PUT, Decimal(490))
    async with collect(nats_server.url, f"senex.md.{token(option)}.QuoteReceived") as quotes:
        reply = await bus.request(
            WatchSymbols(account_id=ACCOUNT, symbols=(option,), lease_seconds=60), WatchReply
        )
        assert reply.symbols == (option,)
        assert reply.watched_until == clock.now() + timedelta(seconds=60)
        event = await quotes.wait_for(is_type(QuoteReceived, option))
        assert isinstance(event, QuoteReceived)
        assert (event.bid, event.ask) == await sim_quote(simulator, option)
    assert option in service.subscribed_symbols

    clock.advance(timedelta(seconds=61))
    await eventually(lambda: option not in service.subscribed_symbols)


async def test_bands_recompute_on_the_injected_clock_only_while_open(
    md: tuple[MarketDataService, Bus],
    nats_server: ServerProcess,
    simulator: SimulatorServer,
    clock: ManualClock,
) -> None:
    _, bus = md
    await freeze(simulator)
    closes = expected_closes("QQQ")
    inside = (sum(closes, Decimal(0)) / len(closes)).quantize(Decimal("0.01"))  # the middle band
    await set_price(simulator, "QQQ", str(inside))
    async with collect(nats_server.url, "senex.md.QQQ.MarketConditionChanged") as changes:
        first = await changes.wait_for(is_type(MarketConditionChanged, "QQQ"))
        assert isinstance(first, MarketConditionChanged)
        assert first.price == inside
        assert first.bands == bollinger(closes, inside)
        assert first.band_position is BandPosition.INSIDE
        assert not first.stressed

        async def condition() -> MarketConditionReply | None:
            reply = await bus.request(
                GetMarketCondition(account_id=ACCOUNT, underlying="QQQ"),
                MarketConditionReply,
            )
            return reply if reply.risk_free_rate_source == "BROKER" else None

        reply = await eventually(condition)
        assert reply.daily_closes == closes
        assert reply.bands == first.bands
        assert reply.risk_free_rate == Decimal("0.0425")  # the simulator's rate

        # A crash far below the lower band: the cache sees it at once...
        await set_price(simulator, "QQQ", "300.00")

        async def crashed() -> bool:
            quotes = await bus.request(GetQuotes(account_id=ACCOUNT, symbols=("QQQ",)), QuotesReply)
            return quotes.quotes[0].mid == Decimal("300.00")

        await eventually(crashed)
        # ...but the bands wait for their 30 s of business time.
        await _settle()
        assert changes.matching(is_type(MarketConditionChanged)) == [first]
        clock.advance(timedelta(seconds=30))
        stressed = await changes.wait_for(lambda e: e is not first)
        assert isinstance(stressed, MarketConditionChanged)
        assert stressed.band_position is BandPosition.AT_OR_BELOW_LOWER
        assert stressed.stressed
        assert stressed.occurred_at == clock.now()

        # After the close nothing is recomputed, however far the clock moves.
        clock.set(SIM_START.replace(hour=17))
        await set_price(simulator, "QQQ", str(inside))

        async def recovered_price() -> bool:
            quotes = await bus.request(GetQuotes(account_id=ACCOUNT, symbols=("QQQ",)), QuotesReply)
            return quotes.quotes[0].mid == inside

        await eventually(recovered_price)
        clock.advance(timedelta(seconds=60))
        await _settle()
        assert len(changes.matching(is_type(MarketConditionChanged))) == 2


async def _settle(seconds: float = 0.5) -> None:
    """Give the scheduler a few passes (it ticks every 0.05 s in these tests)."""
    await asyncio.sleep(seconds)


async def test_stale_on_silence_then_recovered_after_a_socket_drop(
    md: tuple[MarketDataService, Bus],
    nats_server: ServerProcess,
    simulator: SimulatorServer,
    clock: ManualClock,
) -> None:
    service, bus = md
    await set_price(simulator, "QQQ", "500.00")  # a pinned price never quotes again

    async def has_quote() -> bool:
        reply = await bus.request(GetQuotes(account_id=ACCOUNT, symbols=("QQQ",)), QuotesReply)
        return not reply.missing

    await eventually(has_quote)
    async with collect(nats_server.url, "senex.md.QQQ.>") as events:
        clock.advance(timedelta(seconds=61))
        stale = await events.wait_for(is_type(MarketDataStale, "QQQ"))
        assert isinstance(stale, MarketDataStale)
        assert stale.max_age_seconds == 60
        assert stale.last_quote_at == SIM_START
        assert "stream CONNECTED" in stale.reason

        with pytest.raises(MarketDataStaleError, match="stale"):
            await bus.request(
                GetMarketCondition(account_id=ACCOUNT, underlying="QQQ"),
                MarketConditionReply,
            )
        with pytest.raises(MarketDataStaleError):
            await bus.request(
                GetChainSnapshot(account_id=ACCOUNT, underlying="QQQ"),
                ChainSnapshotReply,
            )

        # The socket drops; the stream reconnects, resubscribes, and the quote is back.
        await control(simulator, "POST", "/sim/sockets/drop", {"kind": "dxlink"})
        recovered = await events.wait_for(is_type(MarketDataRecovered, "QQQ"))
        assert isinstance(recovered, MarketDataRecovered)
        assert recovered.stale_since == stale.occurred_at
    assert service.stream is not None
    assert service.stream.health().reconnects >= 1


async def test_balance_updated_for_a_newly_linked_account_and_only_on_change(
    md: tuple[MarketDataService, Bus],
    nats_server: ServerProcess,
    simulator: SimulatorServer,
    dsn: str,
    vault_key: bytes,
    clock: ManualClock,
) -> None:
    service, _ = md
    credentials = BrokerCredentials(
        client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
        refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
    )
    subject = account_event_subject(ACCOUNT, "account", "BalanceUpdated")
    async with collect(nats_server.url, subject) as balances:
        await _settle()
        assert balances.events == []  # nothing linked yet
        vault = CredentialsVault(dsn, vault_key, mode=TradingMode.PAPER)
        await vault.store(
            account_number=ACCOUNT, user_id="alice", mode=TradingMode.PAPER, credentials=credentials
        )
        try:
            clock.advance(timedelta(seconds=30))  # the next poll re-reads the links
            event = await balances.wait_for(is_type(BalanceUpdated))
            assert isinstance(event, BalanceUpdated)
            settings = service.broker_settings
            async with BrokerAdapter(settings, StaticCredentials({ACCOUNT: credentials})) as a:
                broker = await a.get_balances(ACCOUNT)
            assert event.account_id == ACCOUNT
            assert event.derivative_buying_power == broker.derivative_buying_power
            assert event.net_liquidating_value == broker.net_liquidating_value
            assert event.cash_balance == broker.cash_balance

            clock.advance(timedelta(seconds=30))  # same figures: nothing new is logged
            await _settle(1.5)
            assert len(balances.events) == 1
        finally:
            await vault.remove(ACCOUNT)


async def test_live_mode_without_a_linked_account_stays_healthy_and_says_so(
    nats_server: ServerProcess, dsn: str, simulator: SimulatorServer, vault_key: bytes
) -> None:
    async with running_service(
        nats_url=nats_server.url,
        database_url=dsn,
        server=simulator,
        vault_key=vault_key,
        clock=ManualClock(SIM_START),
        mode=RuntimeMode.LIVE,
    ) as (service, bus):
        await eventually(lambda: service.broker_status == "no linked account")
        health = await service.health()
        assert health.healthy  # NATS and Postgres are fine; the broker line only informs
        assert health.checks["broker"] == "no linked account"
        with pytest.raises(MarketDataStaleError, match="no quote"):
            await bus.request(
                GetMarketCondition(account_id=ACCOUNT, underlying="QQQ"),
                MarketConditionReply,
            )
