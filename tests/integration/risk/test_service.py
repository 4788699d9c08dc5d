"""The risk service over real NATS and Postgres, dry-running against the broker simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from pydantic import SecretStr

from libs.broker.models import BrokerCredentials
from libs.broker.vault import CredentialsVault
from libs.contracts.account import TradingMode
from libs.contracts.commands import (
    Command,
    GetMarketCondition,
    GetRiskBudget,
    MarketConditionReply,
    RiskBudgetReply,
)
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind, ServiceUnavailable
from libs.contracts.execution import (
    CancelReason,
    OrderCancelled,
    OrderLeg,
    OrderPurpose,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.market import Quote
from libs.contracts.risk import (
    ReleaseReason,
    RiskCheckFailed,
    RiskCheckPassed,
    RiskReleased,
    RiskReservationFailed,
    RiskReserved,
    RiskTemplate,
    WarningLevel,
)
from libs.contracts.strategy import Suggestion
from libs.domain.trident import opening_legs
from libs.indicators.bands import band_position, bollinger
from libs.runtime.bus import Bus
from libs.runtime.clock import ManualClock
from libs.runtime.servers import ServerProcess
from services.risk.service import RiskService
from services.simulator.server import SimulatorServer
from tests.integration.risk.harness import (
    ACCOUNT,
    VAULT_KEY,
    Events,
    Market,
    approved,
    balance,
    control,
    env,
    generated,
    max_risk_at_limit,
    mid_limit,
    spy_market,
    start_risk,
    suggestion_of,
    until,
)
from tests.simulator_fixtures import SIM_START

D = Decimal
TOLERANCE = D("0.40")  # conservative, the default template


@dataclass
class World:
    bus: Bus
    events: Events
    service: RiskService
    market: Market
    simulator: SimulatorServer
    database_url: str

    async def publish_and_fold(self, *events: Event) -> None:
        """Publish, then wait until the service's follower has folded (and reacted to) them."""
        acks = await self.bus.publish_many(events)
        target = max(ack.sequence for ack in acks)
        await until(lambda: self.service.follower.last_sequence >= target)

    def budget_for(self, trade_max_risk: Decimal, utilisation: str) -> Decimal:
        """The buying power at which one trade of ``trade_max_risk`` reaches ``utilisation``."""
        return (trade_max_risk / D(utilisation) / TOLERANCE).quantize(D("0.01"))

    async def generate(self, suggestion: Suggestion, account: str = ACCOUNT) -> Event:
        """Publish the suggestion and return the risk check it gets."""
        await self.bus.publish(generated(suggestion, account))
        check: list[Event] = []

        def answered() -> bool:
            check[:] = [
                e
                for e in self.events.of(RiskCheckPassed) + self.events.of(RiskCheckFailed)
                if e.suggestion_id == suggestion.suggestion_id
            ]
            return bool(check)

        await until(answered)
        return check[0]

    def verdicts(self) -> list[RiskReserved | RiskReservationFailed]:
        return [*self.events.of(RiskReserved), *self.events.of(RiskReservationFailed)]

    async def verdict(self, suggestion: Suggestion) -> RiskReserved | RiskReservationFailed:
        found: list[RiskReserved | RiskReservationFailed] = []

        def answered() -> bool:
            found[:] = [v for v in self.verdicts() if v.suggestion_id == suggestion.suggestion_id]
            return bool(found)

        await until(answered, timeout=15)
        return found[0]

    async def budget(self, account: str = ACCOUNT) -> RiskBudgetReply:
        return await self.bus.request(GetRiskBudget(account_id=account), RiskBudgetReply)


@pytest.fixture
async def world(
    nats_factory: Callable[[], ServerProcess], database_url: str, simulator: SimulatorServer
) -> AsyncIterator[World]:
    server = nats_factory()
    clock = ManualClock(SIM_START)
    bus = await Bus.connect(server.url, "test")
    events = Events()
    await events.start(bus)
    market = await spy_market(simulator)
    service = await start_risk(simulator, server.url, database_url, clock)
    world = World(bus, events, service, market, simulator, database_url)
    yield world
    await world.service.stop()  # a restart test replaces the service it started with
    await bus.close()


async def test_a_suggestion_too_large_for_the_account_fails_with_the_numbers(world: World) -> None:
    suggestion = suggestion_of(world.market)
    assert suggestion.max_risk > 0
    buying_power = world.budget_for(suggestion.max_risk, "1.25")  # 125 % of the budget
    await world.publish_and_fold(balance(buying_power))
    check = await world.generate(suggestion)
    assert isinstance(check, RiskCheckFailed)
    assert check.reason is ErrorKind.RISK_BUDGET_EXCEEDED
    a = check.assessment
    assert a is not None
    assert a.buying_power == a.tradeable_capital == buying_power
    assert a.available_risk == buying_power * TOLERANCE
    assert a.trade_max_risk == suggestion.max_risk
    assert a.remaining_risk == a.available_risk
    assert a.warning_level is WarningLevel.CRITICAL
    assert str(suggestion.max_risk) in check.message
    assert str(a.remaining_risk) in check.message
    assert check.causation_id is not None  # it joins the suggestion's causal chain


async def test_a_fitting_suggestion_passes_with_its_warning_level(world: World) -> None:
    suggestion = suggestion_of(world.market)
    await world.publish_and_fold(balance(world.budget_for(suggestion.max_risk, "0.70")))
    check = await world.generate(suggestion)
    assert isinstance(check, RiskCheckPassed)
    a = check.assessment
    assert a.warning_level is WarningLevel.WARNING  # 70 %: past 65 %, short of 80 %
    assert a.utilisation is not None
    assert D("0.69") < a.utilisation < D("0.71")
    assert a.template is RiskTemplate.CONSERVATIVE
    assert not a.stressed


async def test_a_stressed_suggestion_gets_the_stressed_tolerance(world: World) -> None:
    suggestion = suggestion_of(world.market, stressed=True)
    # 125 % of the unstressed budget fits the stressed one (0.60 instead of 0.40).
    await world.publish_and_fold(balance(world.budget_for(suggestion.max_risk, "1.25")))
    check = await world.generate(suggestion)
    assert isinstance(check, RiskCheckPassed)
    assert check.assessment.stressed
    assert check.assessment.tolerance == D("0.60")


async def test_without_a_balance_the_check_fails_asking_to_retry(world: World) -> None:
    check = await world.generate(suggestion_of(world.market))
    assert isinstance(check, RiskCheckFailed)
    assert check.reason is ErrorKind.SERVICE_UNAVAILABLE
    assert "no broker balance" in check.message
    with pytest.raises(ServiceUnavailable, match="no broker balance"):
        await world.budget()


async def test_an_approval_reserves_after_the_brokers_dry_run_and_the_budget_shows_it(
    world: World,
) -> None:
    suggestion = suggestion_of(world.market)
    await world.publish_and_fold(balance("100000.00"))
    await world.generate(suggestion)
    await world.bus.publish(approved(suggestion))
    reserved = await world.verdict(suggestion)
    assert isinstance(reserved, RiskReserved), reserved
    assert reserved.amount == max_risk_at_limit(suggestion)
    assert reserved.limit_credit == mid_limit(suggestion)
    assert reserved.assessment.trade_max_risk == reserved.amount
    change = reserved.assessment.dry_run_buying_power_change
    assert change is not None
    assert change < 0

    budget = (await world.budget()).budget
    assert budget.reserved_risk == reserved.amount
    assert budget.used_risk == reserved.amount
    assert budget.available_risk == D("100000.00") * TOLERANCE
    assert budget.remaining_risk == budget.available_risk - reserved.amount
    assert budget.open_positions == 0
    assert budget.warning_level is WarningLevel.NONE
    assert budget.utilisation == reserved.amount / budget.available_risk

    # A redelivered approval is answered already: nothing more is published.
    await world.publish_and_fold(approved(suggestion))
    await asyncio.sleep(0.2)
    assert len(world.verdicts()) == 1


async def test_a_dry_run_refused_by_the_broker_fails_with_the_brokers_reason(
    world: World,
) -> None:
    poor = await control(
        world.simulator, "POST", "/sim/customers", {"name": "Poor", "starting-cash": "300.00"}
    )
    account = poor["accounts"][0]
    vault = CredentialsVault(world.database_url, VAULT_KEY)
    await vault.store(
        account_number=account,
        user_id="poor",
        mode=TradingMode.PAPER,
        credentials=BrokerCredentials(
            client_secret=SecretStr(poor["client-secret"]),
            refresh_token=SecretStr(poor["refresh-token"]),
        ),
    )
    suggestion = suggestion_of(world.market)
    # A stale local balance says plenty: the budget passes, the broker knows better.
    await world.publish_and_fold(balance("100000.00", account))
    assert isinstance(await world.generate(suggestion, account), RiskCheckPassed)
    await world.bus.publish(approved(suggestion, account))
    failed = await world.verdict(suggestion)
    assert isinstance(failed, RiskReservationFailed), failed
    assert failed.reason is ErrorKind.INSUFFICIENT_BUYING_POWER
    assert "Order would exceed available buying power" in failed.message
    assert failed.assessment is not None
    assert failed.assessment.dry_run_buying_power_change is not None
    assert (await world.budget(account)).budget.reserved_risk == 0


async def test_an_unconfirmed_approval_above_a_warning_is_refused(world: World) -> None:
    suggestion = suggestion_of(world.market)
    trade = max_risk_at_limit(suggestion)
    await world.publish_and_fold(balance(world.budget_for(trade, "0.50"), seconds=0))
    check = await world.generate(suggestion)
    assert isinstance(check, RiskCheckPassed)
    assert check.assessment.warning_level is WarningLevel.NONE
    # The broker's balance drops before the approval: the same trade now reaches 75 %.
    await world.publish_and_fold(balance(world.budget_for(trade, "0.75"), seconds=30))
    await world.bus.publish(approved(suggestion))
    refused = await world.verdict(suggestion)
    assert isinstance(refused, RiskReservationFailed), refused
    assert refused.reason is ErrorKind.RISK_WARNING_UNCONFIRMED
    assert refused.assessment is not None
    assert refused.assessment.warning_level is WarningLevel.WARNING

    # Confirmed at that level, the next one goes through.
    other = suggestion_of(world.market)
    await world.generate(other)
    await world.bus.publish(approved(other, warning=WarningLevel.WARNING))
    assert isinstance(await world.verdict(other), RiskReserved)


async def _many(world: World, count: int) -> tuple[list[Suggestion], Decimal]:
    """``count`` suggestions checked on a budget that fits three and a half of them."""
    suggestions = [suggestion_of(world.market) for _ in range(count)]
    trade = max_risk_at_limit(suggestions[0])
    available = trade * D("3.5")
    await world.publish_and_fold(balance((available / TOLERANCE).quantize(D("0.01"))))
    for suggestion in suggestions:
        await world.generate(suggestion)
    return suggestions, trade


def _assert_never_over(world: World, suggestions: list[Suggestion], trade: Decimal) -> None:
    verdicts = world.verdicts()
    assert len(verdicts) == len(suggestions)
    reserved = [v for v in verdicts if isinstance(v, RiskReserved)]
    refused = [v for v in verdicts if isinstance(v, RiskReservationFailed)]
    assert len(reserved) == 3
    assert {v.reason for v in refused} == {ErrorKind.RISK_BUDGET_EXCEEDED}
    total = sum((v.amount for v in reserved), D(0))
    assert total == 3 * trade
    available = reserved[0].assessment.available_risk
    assert total <= available
    assert all(v.assessment.remaining_risk >= v.amount for v in reserved)


async def test_approvals_racing_over_nats_never_over_commit(world: World) -> None:
    suggestions, trade = await _many(world, 8)
    # Approvals confirming the highest warning: only the budget decides.
    await asyncio.gather(
        *(world.bus.publish(approved(s, warning=WarningLevel.CRITICAL)) for s in suggestions)
    )
    await until(lambda: len(world.verdicts()) == len(suggestions), timeout=30)
    _assert_never_over(world, suggestions, trade)
    budget = (await world.budget()).budget
    assert budget.reserved_risk == 3 * trade <= budget.available_risk


async def test_concurrent_decisions_in_one_process_never_over_commit(world: World) -> None:
    suggestions, trade = await _many(world, 6)
    # Straight into the service, all at once: only the per-account lock orders them.
    await asyncio.gather(
        *(
            world.service.parts.reservations.decide_approval(
                approved(s, warning=WarningLevel.CRITICAL)
            )
            for s in suggestions
        )
    )
    await until(lambda: len(world.verdicts()) == len(suggestions))
    _assert_never_over(world, suggestions, trade)


def _opening(suggestion: Suggestion, reserved: RiskReserved) -> OrderSubmitted:
    order_id = new_event_id()
    return OrderSubmitted(
        **env(),
        order_id=order_id,
        client_tag=f"sx-{order_id.hex}",
        purpose=OrderPurpose.OPEN,
        underlying="SPY",
        legs=tuple(OrderLeg.model_validate(leg) for leg in opening_legs(suggestion)),
        limit_price=reserved.limit_credit,
        time_in_force=TimeInForce.DAY,
        suggestion_id=suggestion.suggestion_id,
        reservation_id=reserved.reservation_id,
    )


async def test_cancelling_the_opening_order_releases_the_reservation(world: World) -> None:
    suggestion = suggestion_of(world.market)
    await world.publish_and_fold(balance("100000.00"))
    await world.generate(suggestion)
    await world.bus.publish(approved(suggestion))
    reserved = await world.verdict(suggestion)
    assert isinstance(reserved, RiskReserved)
    submitted = _opening(suggestion, reserved)
    cancelled = OrderCancelled(
        **env(), order_id=submitted.order_id, reason=CancelReason.USER_REQUESTED
    )
    await world.publish_and_fold(submitted, cancelled)
    (released,) = await world.events.wait_for(RiskReleased)
    assert released.reason is ReleaseReason.CANCELLED
    assert (released.reservation_id, released.order_id) == (
        reserved.reservation_id,
        submitted.order_id,
    )
    assert released.amount == reserved.amount
    assert released.causation_id == cancelled.event_id
    await until(lambda: world.service.account(ACCOUNT).usage.reserved_risk == 0)
    assert (await world.budget()).budget.reserved_risk == 0
    # Delivered again, the cancellation releases nothing more.
    await world.publish_and_fold(
        OrderCancelled(**env(), order_id=submitted.order_id, reason=CancelReason.BROKER)
    )
    await asyncio.sleep(0.2)
    assert len(world.events.of(RiskReleased)) == 1


async def test_a_restart_rebuilds_the_reservations_and_decides_nothing_twice(
    world: World, simulator: SimulatorServer
) -> None:
    suggestion = suggestion_of(world.market)
    await world.publish_and_fold(balance("100000.00"))
    await world.generate(suggestion)
    await world.bus.publish(approved(suggestion))
    reserved = await world.verdict(suggestion)
    assert isinstance(reserved, RiskReserved)
    await world.service.stop()
    nats_url = world.bus.nc.connected_url
    assert nats_url is not None
    world.service = await start_risk(
        simulator,
        f"nats://{nats_url.hostname}:{nats_url.port}",
        world.database_url,
        ManualClock(SIM_START),
    )
    assert world.service.account(ACCOUNT).usage.reserved_risk == reserved.amount
    assert (await world.service.health()).healthy
    await world.publish_and_fold(approved(suggestion))
    await asyncio.sleep(0.2)
    assert len(world.verdicts()) == 1


async def _serve_condition(bus: Bus, *, stressed: bool) -> list[str]:
    """A market-data responder answering GetMarketCondition with ``stressed``."""
    asked: list[str] = []

    async def condition(command: Command) -> MarketConditionReply:
        assert isinstance(command, GetMarketCondition)
        asked.append(command.underlying.value)
        price = D("590.00")
        closes = tuple(D(600 + n % 3) for n in range(19))
        bands = bollinger(closes, price)
        quote = Quote(symbol="SPY", bid=D("589.99"), ask=D("590.01"), quoted_at=SIM_START)
        return MarketConditionReply(
            underlying=command.underlying,
            as_of=SIM_START,
            quote=quote,
            price=price,
            daily_closes=closes,
            bands=bands,
            band_position=band_position(price, bands),
            stressed=stressed,
            risk_free_rate=D("0.045"),
            risk_free_rate_source="FALLBACK",
        )

    await bus.serve("market_data", {"get_market_condition": condition})
    await bus.flush()
    return asked


async def test_an_approval_in_a_stressed_market_uses_the_stressed_tolerance(
    world: World,
) -> None:
    asked = await _serve_condition(world.bus, stressed=True)
    suggestion = suggestion_of(world.market, stressed=True)
    trade = max_risk_at_limit(suggestion)
    # Over the unstressed budget (0.40), inside the stressed one (0.60).
    await world.publish_and_fold(balance(world.budget_for(trade, "1.25")))
    assert isinstance(await world.generate(suggestion), RiskCheckPassed)
    await world.bus.publish(approved(suggestion, warning=WarningLevel.CRITICAL))
    reserved = await world.verdict(suggestion)
    assert isinstance(reserved, RiskReserved), reserved
    assert reserved.assessment.stressed
    assert reserved.assessment.tolerance == D("0.60")
    assert asked == ["SPY"]
    assert (await world.budget()).budget.stressed_underlyings == ("SPY",)


async def test_without_market_data_an_approval_is_judged_unstressed(world: World) -> None:
    suggestion = suggestion_of(world.market, stressed=True)
    trade = max_risk_at_limit(suggestion)
    await world.publish_and_fold(balance(world.budget_for(trade, "1.25")))
    assert isinstance(await world.generate(suggestion), RiskCheckPassed)
    await world.bus.publish(approved(suggestion, warning=WarningLevel.CRITICAL))
    refused = await world.verdict(suggestion)  # nobody answers: the lower tolerance, fail safe
    assert isinstance(refused, RiskReservationFailed), refused
    assert refused.reason is ErrorKind.RISK_BUDGET_EXCEEDED
    assert refused.assessment is not None
    assert not refused.assessment.stressed


async def test_an_automatic_approval_reaching_a_warning_is_left_to_the_user(
    world: World,
) -> None:
    suggestion = suggestion_of(world.market)
    await world.publish_and_fold(balance(world.budget_for(suggestion.max_risk, "0.70")))
    assert isinstance(await world.generate(suggestion), RiskCheckPassed)
    await world.bus.publish(approved(suggestion, automatic=True))
    refused = await world.verdict(suggestion)
    assert isinstance(refused, RiskReservationFailed), refused
    assert refused.reason is ErrorKind.RISK_WARNING_UNCONFIRMED
    assert "automatic approval cannot confirm" in refused.message
