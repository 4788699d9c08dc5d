"""The risk service in-process on real NATS + Postgres, against the broker simulator.

Suggestions are built from the simulator's own option chain and quotes (valid OCC legs,
two-sided prices), then published as strategy would publish them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, TypeVar

import httpx2
from cryptography.fernet import Fernet
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.wiring import BrokerWiring
from libs.contracts.account import BalanceUpdated
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.market import Quote
from libs.contracts.registry import parse_event
from libs.contracts.risk import WarningLevel
from libs.contracts.strategy import (
    SpreadKind,
    SpreadLeg,
    SuggestedSpread,
    Suggestion,
    SuggestionApproved,
    SuggestionGenerated,
)
from libs.contracts.symbols import OccSymbol
from libs.runtime.bus import Bus
from libs.runtime.clock import NEW_YORK, ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.settings import Settings, TradingMode
from services.risk.bootstrap import RiskDependencies
from services.risk.service import RiskService
from services.risk.settings import RiskSettings
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from services.simulator.server import SimulatorServer
from tests.simulator_fixtures import SIM_START

ACCOUNT = DEFAULT_ACCOUNT_NUMBER
D = Decimal
CENT = D("0.01")
PRICE = "590.00"
WIDTH = D(5)
E = TypeVar("E", bound=Event)
#: One Fernet key for the test session's vault.
VAULT_KEY = Fernet.generate_key()


async def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """Call the simulator's ``/sim/`` control API."""
    async with httpx2.AsyncClient(base_url=server.url, trust_env=False) as client:
        response = await client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


def broker_settings(server: SimulatorServer) -> BrokerSettings:
    return BrokerSettings(
        mode=TradingMode.PAPER,
        simulator_url=server.url,
        request_timeout_s=5,
        vault_key=SecretStr(VAULT_KEY.decode()),
    )


def env(account: str = ACCOUNT, at: datetime = SIM_START) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "producer": "test",
        "account_id": account,
        "correlation_id": new_event_id(),
    }


def balance(
    buying_power: Decimal | str, account: str = ACCOUNT, *, seconds: int = 0
) -> BalanceUpdated:
    at = SIM_START + timedelta(seconds=seconds)
    value = D(buying_power)
    return BalanceUpdated(
        **env(account, at),
        derivative_buying_power=value,
        net_liquidating_value=value,
        cash_balance=value,
        broker_updated_at=at,
    )


class Events:
    """Every business event seen on the bus since `start` (core NATS subscription)."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    async def start(self, bus: Bus) -> None:
        async def collect(msg: Any) -> None:
            self.seen.append(parse_event(msg.data))

        await bus.nc.subscribe("senex.evt.>", cb=collect)
        await bus.flush()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, kind)]

    async def wait_for(self, kind: type[E], count: int = 1, timeout: float = 10.0) -> list[E]:
        await until(lambda: len(self.of(kind)) >= count, timeout)
        return self.of(kind)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Market:
    """A SPY trident's legs from the simulator's chain, and their quotes."""

    expiration_days: int
    short_put: OccSymbol
    long_put: OccSymbol
    short_call: OccSymbol
    long_call: OccSymbol
    quotes: dict[str, tuple[Decimal, Decimal]]


async def spy_market(server: SimulatorServer) -> Market:
    """SPY pinned at 590: K = 590, W = 5, the expiration nearest 45 DTE, live quotes."""
    await control(server, "PUT", "/sim/prices/SPY", {"price": PRICE})
    credentials = BrokerCredentials(
        client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
        refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
    )
    async with BrokerAdapter(
        broker_settings(server), StaticCredentials({ACCOUNT: credentials})
    ) as adapter:
        chain = await adapter.get_option_chain(ACCOUNT, "SPY")
    expiration = min(chain.expirations, key=lambda e: abs(e.days_to_expiration - 45))
    by_strike = {s.strike: s for s in expiration.strikes}
    k = D(590)
    assert {k - WIDTH, k, k + WIDTH} <= set(by_strike), "the chain lists the strikes"
    legs = (
        by_strike[k].put,
        by_strike[k - WIDTH].put,
        by_strike[k].call,
        by_strike[k + WIDTH].call,
    )
    quotes: dict[str, tuple[Decimal, Decimal]] = {}
    for symbol in legs:
        q = await control(server, "GET", f"/sim/quotes/{symbol}")
        quotes[symbol] = (D(q["bid"]), D(q["ask"]))
    return Market(expiration.days_to_expiration, *legs, quotes=quotes)


def _leg(market: Market, symbol: OccSymbol) -> SpreadLeg:
    bid, ask = market.quotes[symbol]
    return SpreadLeg(symbol=symbol, bid=bid, ask=ask, mid=(bid + ask) / 2)


def _spread(kind: SpreadKind, short: SpreadLeg, long: SpreadLeg) -> SuggestedSpread:
    return SuggestedSpread(
        kind=kind,
        short_leg=short,
        long_leg=long,
        natural_credit=short.bid - long.ask,
        mid_credit=short.mid - long.mid,
    )


def suggestion_of(market: Market, *, stressed: bool = False) -> Suggestion:
    """A full 2:2:1:1 SPY trident at the market's quotes, as strategy would make it."""
    created = SIM_START
    put_short, put_long = _leg(market, market.short_put), _leg(market, market.long_put)
    call_short, call_long = _leg(market, market.short_call), _leg(market, market.long_call)
    spreads = (
        _spread(SpreadKind.PUT_SPREAD_1, put_short, put_long),
        _spread(SpreadKind.PUT_SPREAD_2, put_short, put_long),
        _spread(SpreadKind.CALL_SPREAD, call_short, call_long),
    )
    total_mid = sum((s.mid_credit for s in spreads), D(0))
    expiration = market.short_put.expiration
    return Suggestion(
        suggestion_id=new_event_id(),
        created_at=created,
        expires_at=created + timedelta(hours=24),
        underlying="SPY",
        underlying_price=D(PRICE),
        expiration=expiration,
        dte=(expiration - created.astimezone(NEW_YORK).date()).days,
        base_strike=D(590),
        short_strike=D(590),
        width=WIDTH,
        tradeable_capital=D(30000),
        spreads=spreads,
        near_bollinger_band=False,
        stressed=stressed,
        total_natural_credit=sum((s.natural_credit for s in spreads), D(0)),
        total_mid_credit=total_mid,
        max_profit=total_mid * 100,
        max_risk=2 * WIDTH * 100 - total_mid * 100,
        required_capital=2 * WIDTH * 100,
        quotes=(
            Quote(symbol="SPY", bid=D("589.99"), ask=D("590.01"), quoted_at=created),
            *(
                Quote(symbol=leg.symbol, bid=leg.bid, ask=leg.ask, quoted_at=created)
                for leg in (put_short, put_long, call_short, call_long)
            ),
        ),
    )


def generated(suggestion: Suggestion, account: str = ACCOUNT) -> SuggestionGenerated:
    return SuggestionGenerated(**env(account), suggestion=suggestion)


def mid_limit(suggestion: Suggestion) -> Decimal:
    """The approval's limit at mid, in order units (2:2:1:1: the total credit), to the cent."""
    return suggestion.total_mid_credit.quantize(CENT, rounding=ROUND_DOWN)


def approved(
    suggestion: Suggestion,
    account: str = ACCOUNT,
    *,
    automatic: bool = False,
    warning: WarningLevel = WarningLevel.NONE,
) -> SuggestionApproved:
    return SuggestionApproved(
        **env(account),
        suggestion_id=suggestion.suggestion_id,
        limit_credit=mid_limit(suggestion),
        automatic=automatic,
        approved_by=None if automatic else "alice",
        warning_level=warning,
        warning_confirmed=warning is not WarningLevel.NONE,
    )


def max_risk_at_limit(suggestion: Suggestion) -> Decimal:
    return 2 * suggestion.width * 100 - mid_limit(suggestion) * 100


async def start_risk(
    server: SimulatorServer, nats_url: str, database_url: str, clock: ManualClock
) -> RiskService:
    service = RiskService(
        RiskDependencies(
            clock=clock,
            settings=RiskSettings(market_condition_timeout_s=0.5, dry_run_backoff_s=(0.05,)),
            broker=BrokerWiring(settings=broker_settings(server)),
        )
    )
    ctx = ServiceContext(
        name="risk",
        settings=Settings(nats_url=nats_url, database_url=database_url),
        clock=clock,
        metrics=ServiceMetrics("risk"),
        request_stop=lambda: None,
    )
    await service.start(ctx)
    return service
