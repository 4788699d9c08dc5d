"""Execution's collaborators wired to a broker and a stream in memory (no I/O).

`Execution` builds the same objects `services.execution.bootstrap` builds, but hands
them a `FakeBroker` (orders in a dict, failures on demand) and a fold that applies each
published event to the state at once, as the stream's fold does in stream order. A test
drives a reaction or a command, then `settle`s the background work and reads what was
published.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from uuid import uuid4

from libs.broker.models import BrokerOrder
from libs.contracts.envelope import Causation, Event, new_event_id
from libs.contracts.errors import NotFound, OrderRejectedError, SenexError
from libs.contracts.execution import LegFill, OrderStatus, TimeInForce
from libs.contracts.risk import RiskAssessment, RiskReserved, RiskTemplate, WarningLevel
from libs.contracts.strategy import Suggestion, SuggestionGenerated
from libs.domain.orders import OrderRequest
from libs.runtime.clock import ManualClock
from libs.runtime.envelopes import Envelopes
from libs.runtime.log import get_logger
from libs.runtime.metrics import ServiceMetrics
from services.execution.background import Background, Launcher
from services.execution.cancels import Canceller
from services.execution.commands import Commands
from services.execution.core import RetryPolicy
from services.execution.exits import Exits
from services.execution.metrics import ExecutionMetrics
from services.execution.opening import Opener
from services.execution.positions import Positions
from services.execution.reconciliation import Reconciler
from services.execution.recording import OrderLocks, Recorder
from services.execution.reporting import Reports
from services.execution.sending import Sender
from services.execution.state import ExecutionState
from services.execution.suspension import Suspension
from tests.unit.execution import builders
from tests.unit.execution.builders import AT, LONG_CALL, LONG_PUT, SHORT_CALL, SHORT_PUT

ACCOUNT = "5WT00001"
D = Decimal
E = TypeVar("E", bound=Event)

#: Fill price per symbol (the worked example's); other symbols fill at 1.00.
PRICES = {SHORT_PUT: "2.10", LONG_PUT: "1.05", SHORT_CALL: "1.60", LONG_CALL: "0.80"}
#: No waits between attempts.
NO_WAIT = RetryPolicy((0.0, 0.0, 0.0, 0.0))


def others(account: str = ACCOUNT, cause: Causation | None = None) -> dict[str, Any]:
    """The envelope of an event another service published."""
    links: dict[str, Any] = dict(cause) if cause else {"correlation_id": new_event_id()}
    return {"occurred_at": AT, "producer": "test", "account_id": account, **links}


def reservation(suggestion: Suggestion, limit: str = "2.50") -> RiskReserved:
    """Risk's reservation of ``suggestion`` at the credit ``limit``."""
    amount = D(600) - D(limit) * 100
    return RiskReserved(
        **others(),
        reservation_id=uuid4(),
        suggestion_id=suggestion.suggestion_id,
        amount=amount,
        limit_credit=D(limit),
        assessment=RiskAssessment(
            template=RiskTemplate.CONSERVATIVE,
            base_tolerance=D("0.40"),
            stressed=False,
            tolerance=D("0.40"),
            buying_power=D(20000),
            tradeable_capital=D(20000),
            available_risk=D(8000),
            used_risk=D(0),
            remaining_risk=D(8000),
            trade_max_risk=amount,
            utilisation=D("0.1"),
            warning_level=WarningLevel.NONE,
        ),
    )


class FakeBroker:
    """A broker keeping orders in a dict: working, or filled at once (``fill``)."""

    def __init__(self) -> None:
        self.orders: dict[str, BrokerOrder] = {}
        self.fill = False
        """Place answers report the order filled (else working)."""
        self.fill_openings = False
        """Place answers report openings (DAY orders) filled, exits working."""
        self.failures: list[SenexError] = []
        """Raised, first first, by the next place / replace / lookup calls."""
        self.placed: list[OrderRequest] = []
        self.cancels: list[str] = []
        self.expired: list[str] = []
        self.refuse_cancel = False
        """Cancel answers ORDER_REJECTED and leaves the order as it is."""

    def _fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def add(self, request: OrderRequest, status: OrderStatus, **extra: Any) -> BrokerOrder:
        """Hold a new order for ``request`` (as if placed outside this process)."""
        broker_id = str(100 + len(self.orders))
        fills: tuple[LegFill, ...] = ()
        if status is OrderStatus.FILLED:
            fills = tuple(
                LegFill(
                    symbol=leg.symbol,
                    action=leg.action,
                    quantity=leg.quantity,
                    fill_price=D(PRICES.get(leg.symbol, "1.00")),
                    broker_fill_id=f"{broker_id}-{i}",
                    filled_at=AT,
                )
                for i, leg in enumerate(request.legs)
            )
        order = BrokerOrder(
            broker_order_id=broker_id,
            account_number=ACCOUNT,
            status=status,
            broker_status=status.value,
            underlying=request.underlying,
            legs=request.legs,
            limit_price=request.limit_price,
            time_in_force=request.time_in_force.value,
            client_tag=request.client_tag,
            fills=fills,
            updated_at=AT,
            **extra,
        )
        self.orders[broker_id] = order
        return order

    def set(self, broker_id: str, **changes: Any) -> BrokerOrder:
        """Change what the broker says of an order."""
        order = self.orders[broker_id] = self.orders[broker_id].model_copy(update=changes)
        return order

    async def place_order(self, account_number: str, request: OrderRequest) -> BrokerOrder:
        self._fail()
        self.placed.append(request)
        opening = request.time_in_force is TimeInForce.DAY
        filled = self.fill or (self.fill_openings and opening)
        return self.add(request, OrderStatus.FILLED if filled else OrderStatus.WORKING)

    async def replace_order(
        self, account_number: str, broker_order_id: str, request: OrderRequest
    ) -> BrokerOrder:
        self._fail()
        self.placed.append(request)
        new = self.add(request, OrderStatus.WORKING, replaces_broker_order_id=broker_order_id)
        self.set(
            broker_order_id,
            status=OrderStatus.REPLACED,
            replaced_by_broker_order_id=new.broker_order_id,
        )
        return new

    async def cancel_order(self, account_number: str, broker_order_id: str) -> None:
        self.cancels.append(broker_order_id)
        order = self.orders.get(broker_order_id)
        if order is None:
            raise NotFound(f"no order {broker_order_id}")
        if self.refuse_cancel or not order.is_live:
            raise OrderRejectedError("the order cannot be cancelled")
        self.set(broker_order_id, status=OrderStatus.CANCELLED)

    async def get_order(self, account_number: str, broker_order_id: str) -> BrokerOrder:
        order = self.orders.get(broker_order_id)
        if order is None:
            raise NotFound(f"no order {broker_order_id}")
        return order

    async def get_live_orders(self, account_number: str) -> list[BrokerOrder]:
        self._fail()
        return list(self.orders.values())

    async def find_order_by_client_tag(self, account_number: str, tag: str) -> BrokerOrder | None:
        self._fail()
        return next((o for o in self.orders.values() if o.client_tag == tag), None)

    def expire_session(self, account_number: str) -> None:
        self.expired.append(account_number)


class FakeFeeds:
    """The account streams followed (no stream): which accounts, which reconnected."""

    def __init__(self) -> None:
        self.followed: set[str] = set()
        self.reconnected: list[str] = []

    def __contains__(self, account: object) -> bool:
        return account in self.followed

    async def ensure(self, account: str, *, wanted: Callable[[str], bool] = bool) -> None:
        if wanted(account):
            self.followed.add(account)

    def reconnected_accounts(self) -> list[str]:
        accounts, self.reconnected = self.reconnected, []
        return accounts


@dataclass
class Execution:
    """Every collaborator, wired as the composition root wires them, in memory."""

    policy: RetryPolicy = NO_WAIT
    clock: ManualClock = field(default_factory=lambda: ManualClock(AT))
    state: ExecutionState = field(default_factory=ExecutionState)
    broker: FakeBroker = field(default_factory=FakeBroker)
    feeds: FakeFeeds = field(default_factory=FakeFeeds)
    service_metrics: ServiceMetrics = field(default_factory=lambda: ServiceMetrics("execution"))
    owned: set[str] = field(default_factory=lambda: {ACCOUNT})
    published: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        log = get_logger("execution-test")
        self.metrics = ExecutionMetrics(self.service_metrics)
        self.locks = OrderLocks()
        self.background = Background(log)
        self.launcher = Launcher(self.background, owns=self.owns)
        envelope = Envelopes("execution", lambda: self.clock)
        self.recorder = Recorder(self.state, self.fold, envelope, self.metrics, self.launcher)
        self.suspension = Suspension(self.state, self.recorder, log)
        self.exits = Exits(self.state, self.recorder, self.locks, self.launcher, log)
        self.positions = Positions(self.state, self.recorder, self.exits, self.metrics, log)
        self.reports = Reports(self.state, self.recorder, self.locks, self.positions, log)
        self.canceller = Canceller(self.broker, self.reports, log)
        self.sender = Sender(
            state=self.state,
            broker=self.broker,
            policy=self.policy,
            clock=self.clock,
            reports=self.reports,
            canceller=self.canceller,
            suspension=self.suspension,
            metrics=self.metrics,
            log=log,
        )
        self.launcher.bind(drive=self.sender.drive, feeds=self.feeds)
        self.opener = Opener(
            state=self.state,
            recorder=self.recorder,
            reports=self.reports,
            locks=self.locks,
            launcher=self.launcher,
            clock=self.clock,
            metrics=self.metrics,
            log=log,
        )
        self.reconciler = Reconciler(
            state=self.state,
            broker=self.broker,
            feeds=self.feeds,
            reports=self.reports,
            suspension=self.suspension,
            launcher=self.launcher,
            positions=self.positions,
            exits=self.exits,
            locks=self.locks,
            owns=self.owns,
            interval_s=60.0,
            log=log,
        )
        self.commands = Commands(
            state=self.state,
            recorder=self.recorder,
            locks=self.locks,
            launcher=self.launcher,
            canceller=self.canceller,
            suspension=self.suspension,
            exits=self.exits,
        )

    def owns(self, account: str) -> bool:
        return account in self.owned

    async def fold(self, event: Event) -> None:
        """Publish: the event is in the stream and folded (in order) when this returns."""
        self.published.append(event)
        self.state.apply(event)

    def given(self, *events: Event) -> None:
        """Events other services published earlier, folded."""
        for event in events:
            self.state.apply(event)

    def of(self, kind: type[E], **where: Any) -> list[E]:
        """The events of ``kind`` published here (matching ``where``)."""
        return [
            e
            for e in self.published
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in where.items())
        ]

    async def settle(self) -> None:
        """Wait until no background work is left (work may start more work)."""
        for _ in range(50):
            await asyncio.sleep(0)
            tasks = self.background.tasks()
            if not tasks:
                return
            await asyncio.gather(*tasks)
        raise AssertionError("background work did not settle")

    async def reserve(self, limit: str = "2.50") -> RiskReserved:
        """A suggestion is generated and reserved; execution reacts to the reservation."""
        suggestion = builders.suggestion()
        generated = SuggestionGenerated(**others(), suggestion=suggestion)
        reserved = reservation(suggestion, limit)
        self.given(generated, reserved)
        await self.opener.on_reserved(reserved)
        return reserved
