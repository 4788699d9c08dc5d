"""Events folded into a `MonitorState`, and a fake shell that folds what it publishes.

The fake shell stands for the running service: ``publish`` folds the events into the
state before it returns (as `FollowingService.publish` waits for the fold), and its bus
answers requests from a handler and records what was published without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from libs.contracts.commands import Command, Reply
from libs.contracts.envelope import Event
from libs.contracts.execution import (
    LegFill,
    OrderAction,
    OrderFilled,
    OrderLeg,
    OrderPurpose,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.positions import ExitOrderPlaced, PositionOpened, PositionSpread
from libs.contracts.strategy import SpreadKind
from libs.runtime.clock import ManualClock
from libs.runtime.envelopes import Envelopes
from services.position_monitor.state import MonitorState
from tests.unit.position_monitor.builders import ACCOUNT, EXPIRATION, NOW, POSITION, trident

D = Decimal
PS1, PS2, CALL = SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2, SpreadKind.CALL_SPREAD


def env(**extra: Any) -> dict[str, Any]:
    return {
        "occurred_at": NOW,
        "producer": "test",
        "account_id": ACCOUNT,
        "correlation_id": uuid4(),
        **extra,
    }


def opened(
    position_id: UUID = POSITION,
    spreads: tuple[PositionSpread, ...] | None = None,
    **extra: Any,
) -> PositionOpened:
    spreads = spreads if spreads is not None else trident()
    return PositionOpened(
        **env(**extra),
        position_id=position_id,
        suggestion_id=uuid4(),
        opening_order_id=uuid4(),
        underlying="SPY",
        expiration=EXPIRATION,
        width=D(3),
        spreads=spreads,
        total_entry_credit=sum(s.entry_credit for s in spreads),
        max_risk=D(600),
    )


def spread_of(kind: SpreadKind) -> PositionSpread:
    found = next(s for s in trident() if s.kind is kind)
    return found


def closing_legs(kind: SpreadKind) -> tuple[OrderLeg, ...]:
    spread = spread_of(kind)
    return (
        OrderLeg(symbol=spread.short_symbol, action=OrderAction.BUY_TO_CLOSE, quantity=1),
        OrderLeg(symbol=spread.long_symbol, action=OrderAction.SELL_TO_CLOSE, quantity=1),
    )


def placed(
    order_id: UUID,
    kind: SpreadKind = PS1,
    purpose: OrderPurpose = OrderPurpose.PROFIT_TARGET,
    *,
    position_id: UUID = POSITION,
    limit: str = "-0.63",
    at: datetime = NOW,
) -> ExitOrderPlaced:
    return ExitOrderPlaced(
        **env(occurred_at=at),
        position_id=position_id,
        spread_kind=kind,
        order_id=order_id,
        purpose=purpose,
        legs=closing_legs(kind),
        limit_price=D(limit),
        reason="test",
    )


def submitted(
    order_id: UUID,
    kind: SpreadKind = PS1,
    purpose: OrderPurpose = OrderPurpose.PROFIT_TARGET,
    *,
    position_id: UUID = POSITION,
) -> OrderSubmitted:
    return OrderSubmitted(
        **env(),
        order_id=order_id,
        client_tag=f"t-{order_id.hex[:8]}",
        purpose=purpose,
        underlying="SPY",
        legs=closing_legs(kind),
        limit_price=D("-0.63"),
        time_in_force=TimeInForce.GTC,
        position_id=position_id,
        spread_kind=kind,
    )


def filled(
    order_id: UUID, kind: SpreadKind = PS1, short: str = "0.70", long: str = "0.10", qty: int = 1
) -> OrderFilled:
    spread = spread_of(kind)
    fills = (
        LegFill(
            symbol=spread.short_symbol,
            action=OrderAction.BUY_TO_CLOSE,
            quantity=qty,
            fill_price=D(short),
            broker_fill_id=f"s-{order_id.hex[:8]}",
            filled_at=NOW,
        ),
        LegFill(
            symbol=spread.long_symbol,
            action=OrderAction.SELL_TO_CLOSE,
            quantity=qty,
            fill_price=D(long),
            broker_fill_id=f"l-{order_id.hex[:8]}",
            filled_at=NOW,
        ),
    )
    return OrderFilled(**env(), order_id=order_id, broker_order_id="b1", legs=fills)


def exit_filled(
    order_id: UUID, kind: SpreadKind = PS1, short: str = "0.70", long: str = "0.10"
) -> list[Event]:
    """An exit decided, recorded and completely filled."""
    return [placed(order_id, kind), submitted(order_id, kind), filled(order_id, kind, short, long)]


def fold(*events: Event) -> MonitorState:
    state = MonitorState()
    for event in events:
        state.apply(event)
    return state


@dataclass
class FakeBus:
    """Answers requests with ``answer``; records requests and plain publishes."""

    answer: Callable[[Command], Reply] | None = None
    requests: list[Command] = field(default_factory=list)
    published: list[Event] = field(default_factory=list)

    async def request(self, command: Command, expected: type[Any], **_: Any) -> Any:
        self.requests.append(command)
        assert self.answer is not None, f"unexpected request {command}"
        reply = self.answer(command)
        assert isinstance(reply, expected)
        return reply

    async def publish(self, event: Event, **_: Any) -> None:
        self.published.append(event)


class FakeShell:
    """The running service for one part: folds what it publishes into ``state``."""

    name = "position_monitor"

    def __init__(self, state: MonitorState, clock: ManualClock | None = None) -> None:
        self.state = state
        self.clock = clock or ManualClock(NOW)
        self.fake_bus = FakeBus()
        self.envelope = Envelopes("position_monitor", lambda: self.clock)
        self.published: list[list[Event]] = []
        """Every publish call, empty ones included."""

    @property
    def bus(self) -> Any:
        return self.fake_bus

    def owns(self, account_id: str) -> bool:
        return True

    async def publish(self, *events: Event) -> None:
        self.published.append(list(events))
        for event in events:
            self.state.apply(event)

    def events(self) -> list[Event]:
        """Everything published and folded, in order."""
        return [e for batch in self.published for e in batch]
