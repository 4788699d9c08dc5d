"""The strategy service in-process on real NATS + Postgres, and a test-side market data.

`FakeMarketData` is a real NATS responder for GetMarketCondition and GetChainSnapshot
answering from fixed values (the real market data service is built elsewhere).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from libs.contracts.account import AccountSettings, AccountSettingsChanged, BalanceUpdated
from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ChainSnapshotExpiration,
    ChainSnapshotReply,
    ChainStrikeQuotes,
    Command,
    GetChainSnapshot,
    GetMarketCondition,
    MarketConditionReply,
)
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind, MarketDataStaleError
from libs.contracts.market import Quote
from libs.contracts.registry import parse_event
from libs.contracts.risk import (
    RiskAssessment,
    RiskCheckFailed,
    RiskCheckPassed,
    RiskTemplate,
    WarningLevel,
)
from libs.contracts.symbols import OccSymbol, OptionType
from libs.indicators.bands import band_position, bollinger, price_at_or_below_lower_band
from libs.runtime.bus import Bus
from libs.runtime.clock import NEW_YORK, ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.settings import Settings
from services.strategy.bootstrap import StrategyDependencies
from services.strategy.service import StrategyService
from tests.unit.strategy.builders import CALM_CLOSES, quote

ACCOUNT = "5WT00001"
#: A Tuesday, mid-session.
START = datetime(2025, 6, 3, 11, 0, tzinfo=NEW_YORK)
EXPIRATION = date(2025, 7, 18)  # DTE 45 from 2025-06-03
D = Decimal
PRICE = D("591.00")
E = TypeVar("E", bound=Event)


def env(account: str = ACCOUNT, at: datetime = START) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "producer": "test",
        "account_id": account,
        "correlation_id": new_event_id(),
    }


@dataclass
class FakeMarketData:
    """Answers market data's two queries from the values it holds."""

    clock: ManualClock
    price: Decimal = PRICE
    closes: tuple[str, ...] = CALM_CLOSES
    strikes: Iterable[int] = range(580, 606)
    expiration: date = EXPIRATION
    stale: bool = False
    #: strikes listed without any quote
    unquoted: set[int] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def _quote(self, symbol: str, bid: Decimal, ask: Decimal) -> Quote:
        return Quote(symbol=symbol, bid=bid, ask=ask, quoted_at=self.clock.now())

    def underlying_quote(self) -> Quote:
        return self._quote("QQQ", self.price - D("0.01"), self.price + D("0.01"))

    async def condition(self, command: Command) -> MarketConditionReply:
        assert isinstance(command, GetMarketCondition)
        self.requests.append("condition")
        if self.stale:
            raise MarketDataStaleError("QQQ has had no quote for 60 s")
        closes = tuple(D(c) for c in self.closes)
        bands = bollinger(closes, self.price)
        return MarketConditionReply(
            underlying=command.underlying,
            as_of=self.clock.now(),
            quote=self.underlying_quote(),
            price=self.price,
            daily_closes=closes,
            bands=bands,
            band_position=band_position(self.price, bands),
            stressed=price_at_or_below_lower_band(self.price, bands),
            iv_rank=D("23.5"),
            risk_free_rate=D("0.045"),
            risk_free_rate_source="FALLBACK",
        )

    def option_quote(self, strike: int, option_type: OptionType) -> Quote:
        dte = (self.expiration - self.clock.now().astimezone(NEW_YORK).date()).days
        flag = "p" if option_type is OptionType.PUT else "c"
        values = quote(D(strike), self.price, dte, flag)
        symbol = OccSymbol.build("QQQ", self.expiration, option_type, D(strike))
        return self._quote(symbol, D(values["bid"]), D(values["ask"]))

    async def chain(self, command: Command) -> ChainSnapshotReply:
        assert isinstance(command, GetChainSnapshot)
        self.requests.append("chain")
        now = self.clock.now()
        rows = tuple(
            ChainStrikeQuotes(strike=D(s))
            if s in self.unquoted
            else ChainStrikeQuotes(
                strike=D(s),
                put=self.option_quote(s, OptionType.PUT),
                call=self.option_quote(s, OptionType.CALL),
            )
            for s in self.strikes
        )
        dte = (self.expiration - now.astimezone(NEW_YORK).date()).days
        return ChainSnapshotReply(
            underlying=command.underlying,
            as_of=now,
            underlying_quote=self.underlying_quote(),
            expirations=(
                ChainSnapshotExpiration(expiration=self.expiration, dte=dte, strikes=rows),
            ),
        )

    async def serve(self, bus: Bus) -> None:
        await bus.serve(
            "market_data",
            {"get_market_condition": self.condition, "get_chain_snapshot": self.chain},
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


async def start_strategy(clock: ManualClock, nats_url: str, database_url: str) -> StrategyService:
    service = StrategyService(StrategyDependencies(clock=clock, poll_seconds=0.05))
    ctx = ServiceContext(
        name="strategy",
        settings=Settings(nats_url=nats_url, database_url=database_url),
        clock=clock,
        metrics=ServiceMetrics("strategy"),
        request_stop=lambda: None,
    )
    await service.start(ctx)
    return service


def settings_changed(
    *,
    automation: bool = False,
    offset_cents: int = 0,
    underlyings: tuple[Underlying, ...] = (Underlying.QQQ, Underlying.SPY),
    at: datetime = START,
) -> AccountSettingsChanged:
    return AccountSettingsChanged(
        **env(at=at),
        user_id="alice",
        settings=AccountSettings(
            risk_template=RiskTemplate.CONSERVATIVE,
            automation_enabled=automation,
            automation_offset_cents=offset_cents,
            underlyings=underlyings,
        ),
    )


def balance(buying_power: str = "20000", at: datetime = START) -> BalanceUpdated:
    return BalanceUpdated(
        **env(at=at),
        derivative_buying_power=D(buying_power),
        net_liquidating_value=D(buying_power),
        cash_balance=D(buying_power),
        broker_updated_at=at,
    )


def assessment(warning: WarningLevel = WarningLevel.NONE) -> RiskAssessment:
    return RiskAssessment(
        template=RiskTemplate.CONSERVATIVE,
        base_tolerance=D("0.40"),
        stressed=False,
        tolerance=D("0.40"),
        buying_power=D("20000"),
        tradeable_capital=D("20000"),
        available_risk=D("8000"),
        used_risk=D("0"),
        remaining_risk=D("8000"),
        trade_max_risk=D("250"),
        utilisation=D("0.03"),
        warning_level=warning,
    )


def risk_passed(suggestion_id: Any, warning: WarningLevel = WarningLevel.NONE) -> RiskCheckPassed:
    return RiskCheckPassed(**env(), suggestion_id=suggestion_id, assessment=assessment(warning))


def risk_failed(suggestion_id: Any) -> RiskCheckFailed:
    return RiskCheckFailed(
        **env(),
        suggestion_id=suggestion_id,
        reason=ErrorKind.RISK_BUDGET_EXCEEDED,
        message="max risk 250 exceeds the remaining 100",
        assessment=None,
    )
