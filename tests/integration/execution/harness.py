"""The execution service on real NATS + Postgres against the broker simulator.

`World` publishes what the strategy and risk services would (a Trident suggestion built
from the simulator's own chain and quotes, its approval and the reservation) and
watches every business event on the bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any, TypeVar
from uuid import UUID

import httpx2
from pydantic import SecretStr

from libs.broker.adapter import BrokerAdapter, StaticCredentials
from libs.broker.models import BrokerCredentials
from libs.broker.settings import BrokerSettings
from libs.broker.wiring import BrokerWiring
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.market import Quote
from libs.contracts.registry import parse_event
from libs.contracts.risk import RiskAssessment, RiskReserved, RiskTemplate, WarningLevel
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
from libs.runtime.clock import ManualClock
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.runner import ServiceContext
from libs.runtime.settings import Settings, TradingMode
from services.execution.bootstrap import ExecutionDependencies
from services.execution.service import ExecutionService
from services.execution.settings import ExecutionSettings
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from services.simulator.server import SimulatorServer
from tests.simulator_fixtures import SIM_START

ACCOUNT = DEFAULT_ACCOUNT_NUMBER
CREDENTIALS = BrokerCredentials(
    client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
    refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
)
D = Decimal
CENT = D("0.01")
E = TypeVar("E", bound=Event)


async def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """The simulator's control API."""
    async with httpx2.AsyncClient(base_url=server.url, trust_env=False) as client:
        response = await client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Events:
    """Every business event seen on the bus since `start` (core NATS subscription)."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    async def start(self, bus: Bus) -> None:
        async def collect(msg: Any) -> None:
            self.seen.append(parse_event(msg.data))

        await bus.nc.subscribe("senex.evt.>", cb=collect)
        await bus.flush()

    def of(self, kind: type[E], **where: Any) -> list[E]:
        return [
            e
            for e in self.seen
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in where.items())
        ]

    async def wait_for(
        self, kind: type[E], count: int = 1, timeout: float = 10.0, **where: Any
    ) -> list[E]:
        await until(lambda: len(self.of(kind, **where)) >= count, timeout)
        return self.of(kind, **where)

    def by_id(self, event_id: UUID | None) -> Event:
        return next(e for e in self.seen if e.event_id == event_id)


async def broker_orders(
    server: SimulatorServer,
    tag: str | None = None,
    *,
    account: str = ACCOUNT,
    secret: str = DEFAULT_CLIENT_SECRET,
    refresh: str = DEFAULT_REFRESH_TOKEN,
) -> list[dict[str, Any]]:
    """Every order of ``account`` as the broker's REST API lists it, by client tag."""
    async with httpx2.AsyncClient(base_url=server.url, trust_env=False) as client:
        token = await client.post(
            "/oauth/token",
            json={
                "grant_type": "refresh_token",
                "client_secret": secret,
                "refresh_token": refresh,
            },
        )
        token.raise_for_status()
        response = await client.get(
            f"/accounts/{account}/orders",
            params={"per-page": 250},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["data"]["items"]
    return [o for o in items if tag is None or o.get("external-identifier") == tag]


def broker_settings(server: SimulatorServer, timeout: float = 3.0) -> BrokerSettings:
    return BrokerSettings(
        mode=TradingMode.PAPER, simulator_url=server.url, request_timeout_s=timeout
    )


async def start_execution(
    clock: ManualClock,
    nats_url: str,
    database_url: str,
    server: SimulatorServer,
    *,
    durable: str,
    timeout: float = 3.0,
) -> ExecutionService:
    service = ExecutionService(
        ExecutionDependencies(
            clock=clock,
            settings=ExecutionSettings(backoff_scale=0.05, reconcile_interval_s=0.5),
            broker=BrokerWiring(
                broker_settings(server, timeout), StaticCredentials({ACCOUNT: CREDENTIALS})
            ),
        ),
        durable=durable,
    )
    ctx = ServiceContext(
        name="execution",
        settings=Settings(nats_url=nats_url, database_url=database_url),
        clock=clock,
        metrics=ServiceMetrics("execution"),
        request_stop=lambda: None,
    )
    await service.start(ctx)
    return service


def _leg(symbol: OccSymbol, quote: dict[str, Any]) -> SpreadLeg:
    bid, ask = D(quote["bid"]), D(quote["ask"])
    return SpreadLeg(symbol=symbol, bid=bid, ask=ask, mid=(bid + ask) / 2)


def _spread(kind: SpreadKind, short: SpreadLeg, long: SpreadLeg) -> SuggestedSpread:
    return SuggestedSpread(
        kind=kind,
        short_leg=short,
        long_leg=long,
        natural_credit=short.bid - long.ask,
        mid_credit=short.mid - long.mid,
    )


async def trident(
    adapter: BrokerAdapter, server: SimulatorServer, *, calls: bool = True, width: int = 5
) -> Suggestion:
    """A Senex Trident on SPY from the simulator's chain and quotes (DOMAIN.md 1-3)."""
    chain = await adapter.get_option_chain(ACCOUNT, "SPY")
    expiration = min(
        (e for e in chain.expirations if 30 <= e.days_to_expiration <= 50),
        key=lambda e: abs(e.days_to_expiration - 45),
    )
    spot = D((await control(server, "GET", "/sim/prices/SPY"))["price"])
    by_strike = {s.strike: s for s in expiration.strikes}
    base = 2 * (spot / 2).quantize(D(1))
    short = min(k for k in by_strike if k >= base)
    assert short - width in by_strike
    assert short + width in by_strike

    async def leg(symbol: OccSymbol) -> SpreadLeg:
        return _leg(symbol, await control(server, "GET", f"/sim/quotes/{symbol}"))

    short_put, long_put = await leg(by_strike[short].put), await leg(by_strike[short - width].put)
    spreads = [
        _spread(SpreadKind.PUT_SPREAD_1, short_put, long_put),
        _spread(SpreadKind.PUT_SPREAD_2, short_put, long_put),
    ]
    if calls:
        short_call = await leg(by_strike[short].call)
        long_call = await leg(by_strike[short + width].call)
        spreads.append(_spread(SpreadKind.CALL_SPREAD, short_call, long_call))
    total_natural = sum((s.natural_credit for s in spreads), D(0))
    total_mid = sum((s.mid_credit for s in spreads), D(0))
    created = SIM_START
    return Suggestion(
        suggestion_id=new_event_id(),
        created_at=created,
        expires_at=created + timedelta(hours=24),
        underlying="SPY",
        underlying_price=spot,
        expiration=expiration.expiration_date,
        dte=(expiration.expiration_date - date(2025, 6, 3)).days,
        base_strike=base,
        short_strike=short,
        width=D(width),
        tradeable_capital=D("20000"),
        spreads=tuple(spreads),
        near_bollinger_band=not calls,
        band_reason=None if calls else "price at the lower band",
        total_natural_credit=total_natural,
        total_mid_credit=total_mid,
        max_profit=total_mid * 100,
        max_risk=2 * width * 100 - total_mid * 100,
        required_capital=D(2 * width * 100),
        quotes=(Quote(symbol="SPY", bid=spot, ask=spot, quoted_at=created),),
    )


CONCESSION = D("0.05")


def marketable_credit(suggestion: Suggestion, concession: Decimal = CONCESSION) -> Decimal:
    """A limit (order units) at or beyond the natural: the simulator fills it at once."""
    put = suggestion.spreads[0].natural_credit
    call = suggestion.spreads[2].natural_credit if len(suggestion.spreads) == 3 else None
    # 2:2:1:1 is one unit (2 x put + call); 2:2 has GCD 2 (one put spread's credit).
    natural = 2 * put + call if call is not None else put
    credit = (natural - concession).quantize(CENT, rounding=ROUND_FLOOR)
    assert credit > 0, f"the chain gives no credit at the natural ({natural})"
    return credit


def assessment(max_risk: Decimal) -> RiskAssessment:
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
        trade_max_risk=max_risk,
        utilisation=D("0.1"),
        warning_level=WarningLevel.NONE,
    )


@dataclass
class Approval:
    """The three events leading to an order, as strategy and risk publish them."""

    generated: SuggestionGenerated
    approved: SuggestionApproved
    reserved: RiskReserved

    @property
    def events(self) -> tuple[Event, ...]:
        return (self.generated, self.approved, self.reserved)


def approval(suggestion: Suggestion, limit: Decimal, at: datetime = SIM_START) -> Approval:
    correlation = new_event_id()
    base: dict[str, Any] = {
        "occurred_at": at,
        "producer": "test",
        "account_id": ACCOUNT,
        "correlation_id": correlation,
    }
    generated = SuggestionGenerated(**base, suggestion=suggestion)
    approved = SuggestionApproved(
        **{**base, "causation_id": generated.event_id},
        suggestion_id=suggestion.suggestion_id,
        limit_credit=limit,
        approved_by="alice",
    )
    risk = 2 * suggestion.width * 100 - limit * 100
    reserved = RiskReserved(
        **{**base, "producer": "risk", "causation_id": approved.event_id},
        reservation_id=new_event_id(),
        suggestion_id=suggestion.suggestion_id,
        amount=max(risk, D(0)),
        limit_credit=limit,
        assessment=assessment(max(risk, D(0))),
    )
    return Approval(generated, approved, reserved)


@dataclass
class World:
    clock: ManualClock
    bus: Bus
    events: Events
    simulator: SimulatorServer
    adapter: BrokerAdapter
    nats_url: str
    database_url: str
    durable: str
    service: ExecutionService | None = None
    timeout: float = 3.0
    extra: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> ExecutionService:
        self.service = await start_execution(
            self.clock,
            self.nats_url,
            self.database_url,
            self.simulator,
            durable=self.durable,
            timeout=self.timeout,
        )
        return self.service

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None

    async def prepare(self, *, calls: bool = True, limit: Decimal | None = None) -> Approval:
        """A suggestion from the simulator's chain, approved (marketable unless ``limit``)."""
        suggestion = await trident(self.adapter, self.simulator, calls=calls)
        return approval(suggestion, limit if limit is not None else marketable_credit(suggestion))

    async def publish(self, chosen: Approval) -> Approval:
        """Publish the suggestion, its approval and its reservation."""
        await self.bus.publish_many(chosen.events)
        return chosen

    async def approve(self, *, calls: bool = True, limit: Decimal | None = None) -> Approval:
        """Publish a suggestion's approval and reservation (marketable unless ``limit``)."""
        return await self.publish(await self.prepare(calls=calls, limit=limit))

    async def broker_orders(self, tag: str | None = None) -> list[dict[str, Any]]:
        """Every order the broker holds for the account (raw), optionally by client tag."""
        return await broker_orders(self.simulator, tag)

    async def fault(self, kind: str, **extra: Any) -> None:
        await control(self.simulator, "POST", "/sim/faults", {"kind": kind, **extra})
