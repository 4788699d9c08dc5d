"""The strategy end to end: the real market-data service, the simulator, NATS and Postgres.

Both services run in-process on one `ManualClock` set to the simulator's start, with
the simulator's clock pinned there too (speed 0) and QQQ's price pinned, so every
option quote holds still and the suggestion can be compared with the simulator's own
``/sim/quotes`` exactly. The default customer is linked in the vault, so market data
publishes its BalanceUpdated and the strategy sizes from the broker's buying power.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import quote as url_quote

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from libs.broker.models import BrokerCredentials
from libs.broker.vault import CredentialsVault
from libs.contracts.account import TradingMode
from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ChainSnapshotReply,
    GenerateSuggestion,
    GetChainSnapshot,
    GetMarketCondition,
    GetQuotes,
    MarketConditionReply,
    QuotesReply,
    SuggestionReply,
)
from libs.contracts.envelope import Event
from libs.contracts.errors import MarketDataStaleError, StrikeNotFound
from libs.contracts.strategy import (
    SkipReason,
    SpreadKind,
    SpreadLeg,
    SuggestionGenerated,
    SuggestionSkipped,
)
from libs.contracts.subjects import account_events_filter
from libs.contracts.symbols import OptionType
from libs.eventlog.migrate import migrate
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.servers import ServerProcess
from services.market_data.service import MarketDataService
from services.simulator import chains
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_STARTING_CASH,
)
from services.simulator.server import SimulatorServer
from services.strategy.service import StrategyService
from tests.integration.market_data.helpers import (
    Collector,
    collect,
    control,
    eventually,
    running_service,
    set_price,
)
from tests.integration.strategy.harness import start_strategy
from tests.simulator_fixtures import SIM_START

ACCOUNT = DEFAULT_ACCOUNT_NUMBER
D = Decimal
#: Inside the Bollinger bands of the seeded closes (about 576.5 to 603.8), and a tie of
#: the even-strike rule: 589 / 2 = 294.5 rounds to the even 294, so K = 588 (half-up
#: rounding would give 590).
PRICE = D("589.00")
#: The only expiration 30-50 days out nearest 45 from 2025-06-03 (a monthly, DTE 45).
EXPIRATION = date(2025, 7, 18)
SEED = 7  # the simulator fixture's seed


@dataclass
class World:
    simulator: SimulatorServer
    clock: ManualClock
    bus: Bus
    market_data: MarketDataService
    strategy: StrategyService
    events: Collector

    async def generate(self) -> SuggestionReply:
        command = GenerateSuggestion(
            account_id=ACCOUNT, underlying=Underlying.QQQ, requested_by="alice"
        )
        return await self.bus.request(command, SuggestionReply, timeout=15)

    async def pin_price(self, price: Decimal) -> None:
        """Pin QQQ's price and wait until market data's cache has the new quote."""
        await set_price(self.simulator, "QQQ", str(price))

        async def seen() -> bool:
            reply = await self.bus.request(
                GetQuotes(account_id=ACCOUNT, symbols=("QQQ",)), QuotesReply
            )
            return bool(reply.quotes) and reply.quotes[0].mid == price

        await eventually(seen)

    async def warm(self) -> ChainSnapshotReply:
        """Wait until market data has the bands' closes and every quote of the window."""

        async def condition() -> MarketConditionReply | None:
            try:
                return await self.bus.request(
                    GetMarketCondition(account_id=ACCOUNT, underlying=Underlying.QQQ),
                    MarketConditionReply,
                )
            except MarketDataStaleError:
                return None  # no quote or not all 19 closes yet

        async def chain() -> ChainSnapshotReply | None:
            reply = await self.bus.request(
                GetChainSnapshot(account_id=ACCOUNT, underlying=Underlying.QQQ, wait_seconds=5),
                ChainSnapshotReply,
                timeout=10,
            )
            return reply if reply.expirations and not reply.missing else None

        await eventually(condition)
        snapshot: ChainSnapshotReply = await eventually(chain)
        return snapshot


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture
async def world(
    nats_factory: Callable[[], ServerProcess], dsn: str, simulator: SimulatorServer
) -> AsyncIterator[World]:
    # A NATS of the test's own: the strategy's durable consumer and the business stream
    # start empty.
    nats = nats_factory()
    key = Fernet.generate_key()
    await control(simulator, "PUT", "/sim/clock", {"time": SIM_START.isoformat(), "speed": 0})
    await set_price(simulator, "QQQ", str(PRICE))
    vault = CredentialsVault(dsn, key, mode=TradingMode.PAPER)
    await vault.store(
        account_number=ACCOUNT,
        user_id="alice",
        mode=TradingMode.PAPER,
        credentials=BrokerCredentials(
            client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
            refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
        ),
    )
    clock = ManualClock(SIM_START)
    try:
        async with (
            collect(nats.url, account_events_filter(ACCOUNT, "strategy")) as events,
            running_service(
                nats_url=nats.url,
                database_url=dsn,
                server=simulator,
                vault_key=key,
                clock=clock,
            ) as (market_data, bus),
        ):
            strategy = await start_strategy(clock, nats.url, dsn)
            try:
                # Market data polls the linked account's balance at once and publishes
                # it; the strategy folds it from the business stream.
                await eventually(lambda: strategy.account(ACCOUNT).balance is not None)
                w = World(simulator, clock, bus, market_data, strategy, events)
                await w.warm()
                yield w
            finally:
                await strategy.stop()
    finally:
        await vault.remove(ACCOUNT)


async def sim_quote(server: SimulatorServer, symbol: str) -> tuple[Decimal, Decimal]:
    """The simulator's own bid and ask of an option now (its clock is pinned)."""
    body = await control(server, "GET", "/sim/quotes/" + url_quote(symbol))
    return D(body["bid"]), D(body["ask"])


def of_type(kind: type[Event]) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, kind)


async def test_generate_prices_every_leg_from_the_simulators_quotes(world: World) -> None:
    balance = world.strategy.account(ACCOUNT).balance
    assert balance is not None
    # The default customer's $100,000 cash is its derivative buying power: width tier 9.
    assert balance.derivative_buying_power == DEFAULT_STARTING_CASH

    reply = await world.generate()
    event = await world.events.wait_for(of_type(SuggestionGenerated))
    assert isinstance(event, SuggestionGenerated)
    s = event.suggestion
    assert reply.suggestion.suggestion == s
    assert event.occurred_at == world.clock.now() == s.created_at
    assert event.account_id == ACCOUNT

    # Strikes and sizing (DOMAIN.md 2): K = 2 x round(589 / 2), ties to even.
    assert s.underlying_price == PRICE
    assert s.base_strike == 2 * round(PRICE / 2) == D(588)
    assert s.short_strike == D(588)  # listed on the simulator's $1 grid
    assert s.tradeable_capital == DEFAULT_STARTING_CASH
    assert s.tradeable_capital >= 75_000
    assert s.width == D(9)
    assert (s.expiration, s.dte) == (EXPIRATION, 45)
    assert not s.near_bollinger_band
    assert not s.stressed

    kinds = [spread.kind for spread in s.spreads]
    assert kinds == [SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2, SpreadKind.CALL_SPREAD]
    expected_strikes = {
        SpreadKind.PUT_SPREAD_1: (OptionType.PUT, D(588), D(579)),
        SpreadKind.PUT_SPREAD_2: (OptionType.PUT, D(588), D(579)),
        SpreadKind.CALL_SPREAD: (OptionType.CALL, D(588), D(597)),
    }

    async def market(leg: SpreadLeg) -> tuple[Decimal, Decimal, Decimal]:
        bid, ask = await sim_quote(world.simulator, leg.symbol)
        assert (leg.bid, leg.ask) == (bid, ask), leg.symbol
        assert leg.mid == (bid + ask) / 2
        assert leg.symbol.expiration == EXPIRATION
        return bid, ask, (bid + ask) / 2

    credits: dict[SpreadKind, tuple[Decimal, Decimal]] = {}
    for spread in s.spreads:
        option_type, short_strike, long_strike = expected_strikes[spread.kind]
        for leg, strike in ((spread.short_leg, short_strike), (spread.long_leg, long_strike)):
            assert (leg.symbol.option_type, leg.symbol.strike) == (option_type, strike)
        short_bid, _, short_mid = await market(spread.short_leg)
        _, long_ask, long_mid = await market(spread.long_leg)
        assert spread.natural_credit == short_bid - long_ask
        assert spread.mid_credit == short_mid - long_mid
        credits[spread.kind] = (spread.natural_credit, spread.mid_credit)

    put_natural, put_mid = credits[SpreadKind.PUT_SPREAD_1]
    call_natural, call_mid = credits[SpreadKind.CALL_SPREAD]
    assert credits[SpreadKind.PUT_SPREAD_2] == (put_natural, put_mid)
    assert s.total_natural_credit == 2 * put_natural + call_natural
    assert s.total_mid_credit == 2 * put_mid + call_mid
    assert s.total_mid_credit > 0

    # The quotes the decision used: the underlying, then each of the four legs once.
    assert s.quotes[0].symbol == "QQQ"
    assert (s.quotes[0].bid, s.quotes[0].ask) == (PRICE - D("0.01"), PRICE + D("0.01"))
    legs = [s.spreads[0].short_leg, s.spreads[0].long_leg]
    legs += [s.spreads[2].short_leg, s.spreads[2].long_leg]
    assert [(q.symbol, q.bid, q.ask) for q in s.quotes[1:]] == [
        (leg.symbol, leg.bid, leg.ask) for leg in legs
    ]
    assert event.reason_trail[0].startswith("position limit")


async def test_a_chain_without_the_long_strike_is_skipped(world: World) -> None:
    # The simulator lists $1 strikes 12 % either side of the last close (579.20):
    # 510 to 649. At 508, K = 508 is not listed, so the short strike falls back to the
    # lowest listed one, 510 (DOMAIN.md 2.3); its long put 510 - 9 = 501 is not listed
    # in any expiration: no trade.
    grid = chains.strike_grid(chains.reference_price(SEED, "QQQ", SIM_START))
    low = grid[0]
    assert low == D(510)
    price = D("508.00")
    await world.pin_price(price)

    with pytest.raises(StrikeNotFound) as raised:
        await world.generate()
    event = await world.events.wait_for(of_type(SuggestionSkipped))
    assert isinstance(event, SuggestionSkipped)
    assert event.reason_code is SkipReason.STRIKE_NOT_FOUND
    assert event.underlying == "QQQ"
    assert event.account_id == ACCOUNT
    assert event.message == raised.value.message
    assert f"short {low}: {low - 9} not listed" in event.message
    assert any("base strike 508" in line for line in event.reason_trail)
    assert any("width 9" in line for line in event.reason_trail)
    # Far below the lower band: the call spread is omitted, only the puts are checked.
    assert any("call spread omitted" in line for line in event.reason_trail)
    skipped_lines = [line for line in event.reason_trail if " skipped: " in line]
    assert len(skipped_lines) == 3  # every expiration 30-50 days out: 07-03, 07-11, 07-18
    assert world.events.matching(of_type(SuggestionGenerated)) == []
