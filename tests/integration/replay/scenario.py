"""Realistic, valid event sequences for one account: DOMAIN.md's worked example traded.

QQQ at 591, W = 3: sell 2x 592P, buy 2x 589P, sell 1x 592C, buy 1x 595C, expiring
2026-02-20. Entry credits 1.10 per put spread and 1.50 for the call spread, so the
trident takes 3.70 per share and risks (2 x 3 x 100) - 370 = 230 dollars.

`Script` builds each event on a business clock that moves forward one step per event,
within one correlation per trade; `account_history` strings them into what an account
lives through: a skip, a rejection, an expiry, a failed reservation, a rejected order,
and a trade that opens (partly filled first), gets its exits, is valued, and closes
spread by spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.execution import (
    CancelReason,
    LegFill,
    OrderAccepted,
    OrderAction,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderLeg,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderRejected,
    OrderReplaced,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.market import Quote
from libs.contracts.positions import (
    AttentionReason,
    CloseReason,
    ExitOrderPlaced,
    PositionAttentionCleared,
    PositionClosed,
    PositionNeedsAttention,
    PositionOpened,
    PositionSpread,
    PositionUpdated,
    SpreadClosed,
    SpreadMark,
)
from libs.contracts.risk import (
    ReleaseReason,
    RiskAssessment,
    RiskCheckFailed,
    RiskCheckPassed,
    RiskReleased,
    RiskReservationFailed,
    RiskReserved,
    RiskTemplate,
    WarningLevel,
)
from libs.contracts.strategy import (
    PROFIT_TARGETS,
    SkipReason,
    SpreadKind,
    SpreadLeg,
    SuggestedSpread,
    Suggestion,
    SuggestionApproved,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionSkipped,
)
from libs.contracts.symbols import OccSymbol, OptionType

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
EXPIRATION = date(2026, 2, 20)
WIDTH = Decimal(3)
PUT_592 = OccSymbol.build("QQQ", EXPIRATION, OptionType.PUT, Decimal(592))
PUT_589 = OccSymbol.build("QQQ", EXPIRATION, OptionType.PUT, Decimal(589))
CALL_592 = OccSymbol.build("QQQ", EXPIRATION, OptionType.CALL, Decimal(592))
CALL_595 = OccSymbol.build("QQQ", EXPIRATION, OptionType.CALL, Decimal(595))
#: Legs of each spread: (short, long).
SPREAD_LEGS = {
    SpreadKind.PUT_SPREAD_1: (PUT_592, PUT_589),
    SpreadKind.PUT_SPREAD_2: (PUT_592, PUT_589),
    SpreadKind.CALL_SPREAD: (CALL_592, CALL_595),
}
#: Opening fill prices per share, and the entry credits they make.
FILL_PRICES = {
    PUT_592: Decimal("9.15"),
    PUT_589: Decimal("8.05"),
    CALL_592: Decimal("8.55"),
    CALL_595: Decimal("7.05"),
}
ENTRY_CREDITS = {
    SpreadKind.PUT_SPREAD_1: Decimal("1.10"),
    SpreadKind.PUT_SPREAD_2: Decimal("1.10"),
    SpreadKind.CALL_SPREAD: Decimal("1.50"),
}
TOTAL_CREDIT = Decimal("3.70")
MAX_RISK = Decimal(230)


def d(value: str | int) -> Decimal:
    return Decimal(value)


def assessment(
    warning: WarningLevel = WarningLevel.NONE, used: str = "0", max_risk: Decimal = MAX_RISK
) -> RiskAssessment:
    """A moderate-template budget on 20,000 of buying power, ``used`` already taken."""
    available = d(10000)
    return RiskAssessment(
        template=RiskTemplate.MODERATE,
        base_tolerance=d("0.50"),
        stressed=False,
        tolerance=d("0.50"),
        buying_power=d(20000),
        tradeable_capital=d(20000),
        available_risk=available,
        used_risk=d(used),
        remaining_risk=available - d(used),
        trade_max_risk=max_risk,
        utilisation=(d(used) + max_risk) / available,
        warning_level=warning,
    )


def quote(symbol: str, bid: str, ask: str, at: datetime) -> Quote:
    return Quote(symbol=symbol, bid=d(bid), ask=d(ask), quoted_at=at)


def _leg(symbol: OccSymbol, bid: str, ask: str) -> SpreadLeg:
    return SpreadLeg(symbol=symbol, bid=d(bid), ask=d(ask), mid=(d(bid) + d(ask)) / 2)


def _spread(kind: SpreadKind, short: SpreadLeg, long: SpreadLeg) -> SuggestedSpread:
    return SuggestedSpread(
        kind=kind,
        short_leg=short,
        long_leg=long,
        natural_credit=short.bid - long.ask,
        mid_credit=short.mid - long.mid,
    )


def suggestion(suggestion_id: UUID, created_at: datetime) -> Suggestion:
    """The worked example priced from quotes whose mids give 1.10 / 1.10 / 1.50."""
    put_short, put_long = _leg(PUT_592, "9.10", "9.20"), _leg(PUT_589, "8.00", "8.10")
    call_short, call_long = _leg(CALL_592, "8.50", "8.60"), _leg(CALL_595, "7.00", "7.10")
    spreads = (
        _spread(SpreadKind.PUT_SPREAD_1, put_short, put_long),
        _spread(SpreadKind.PUT_SPREAD_2, put_short, put_long),
        _spread(SpreadKind.CALL_SPREAD, call_short, call_long),
    )
    total_mid = sum((s.mid_credit for s in spreads), Decimal(0))
    legs = (put_short, put_long, call_short, call_long)
    return Suggestion(
        suggestion_id=suggestion_id,
        created_at=created_at,
        expires_at=created_at + timedelta(hours=24),
        underlying="QQQ",
        underlying_price=d("591.00"),
        expiration=EXPIRATION,
        dte=(EXPIRATION - created_at.date()).days,
        base_strike=d(592),
        short_strike=d(592),
        width=WIDTH,
        tradeable_capital=d(20000),
        spreads=spreads,
        near_bollinger_band=False,
        total_natural_credit=sum((s.natural_credit for s in spreads), Decimal(0)),
        total_mid_credit=total_mid,
        max_profit=total_mid * 100,
        max_risk=2 * WIDTH * 100 - total_mid * 100,
        required_capital=2 * WIDTH * 100,
        iv_rank=d("38.5"),
        quotes=(
            quote("QQQ", "590.99", "591.01", created_at),
            *(quote(leg.symbol, str(leg.bid), str(leg.ask), created_at) for leg in legs),
        ),
    )


def opening_legs() -> tuple[OrderLeg, ...]:
    """The 2:2:1:1 opening order."""
    return (
        OrderLeg(symbol=PUT_592, action=OrderAction.SELL_TO_OPEN, quantity=2),
        OrderLeg(symbol=PUT_589, action=OrderAction.BUY_TO_OPEN, quantity=2),
        OrderLeg(symbol=CALL_592, action=OrderAction.SELL_TO_OPEN, quantity=1),
        OrderLeg(symbol=CALL_595, action=OrderAction.BUY_TO_OPEN, quantity=1),
    )


def closing_legs(kind: SpreadKind) -> tuple[OrderLeg, ...]:
    """Buy back the short, sell the long: one spread."""
    short, long = SPREAD_LEGS[kind]
    return (
        OrderLeg(symbol=short, action=OrderAction.BUY_TO_CLOSE, quantity=1),
        OrderLeg(symbol=long, action=OrderAction.SELL_TO_CLOSE, quantity=1),
    )


@dataclass
class Script:
    """Builds one account's events; each event moves the business clock one step."""

    account: str
    clock: datetime = START
    step: timedelta = timedelta(minutes=1)
    correlation: UUID = field(default_factory=new_event_id)
    fills: int = 0

    def env(self, producer: str) -> dict[str, Any]:
        self.clock += self.step
        return {
            "occurred_at": self.clock,
            "producer": producer,
            "account_id": self.account,
            "correlation_id": self.correlation,
        }

    def new_correlation(self) -> None:
        self.correlation = new_event_id()

    def wait(self, delta: timedelta) -> None:
        self.clock += delta

    def fill(self, symbol: OccSymbol, action: OrderAction, price: Decimal) -> LegFill:
        self.fills += 1
        return LegFill(
            symbol=symbol,
            action=action,
            quantity=1,
            fill_price=price,
            broker_fill_id=f"{self.account}-fill-{self.fills}",
            filled_at=self.clock,
        )

    # --- strategy ---------------------------------------------------------------------

    def generated(self, suggestion_id: UUID, *, automatic: bool = False) -> SuggestionGenerated:
        env = self.env("strategy")
        return SuggestionGenerated(
            **env, suggestion=suggestion(suggestion_id, env["occurred_at"]), automatic=automatic
        )

    def skipped(self) -> SuggestionSkipped:
        return SuggestionSkipped(
            **self.env("strategy"),
            underlying="SPY",
            reason_code=SkipReason.CONFLICTING_POSITION,
            message="proposed short 592P equals the long strike of an open 595/592 put spread",
            expiration=EXPIRATION,
            details={"existing_position": "595/592P"},
        )

    def approved(
        self,
        suggestion_id: UUID,
        *,
        limit: str = "3.70",
        warning: WarningLevel = WarningLevel.NONE,
        automatic: bool = False,
    ) -> SuggestionApproved:
        return SuggestionApproved(
            **self.env("strategy"),
            suggestion_id=suggestion_id,
            limit_credit=d(limit),
            automatic=automatic,
            approved_by=None if automatic else "alice",
            warning_level=warning,
            warning_confirmed=warning is not WarningLevel.NONE,
        )

    def rejected(self, suggestion_id: UUID) -> SuggestionRejected:
        return SuggestionRejected(
            **self.env("strategy"),
            suggestion_id=suggestion_id,
            rejected_by="alice",
            reason="over budget",
        )

    def expired(self, suggestion_id: UUID, created_at: datetime) -> SuggestionExpired:
        return SuggestionExpired(
            **self.env("strategy"),
            suggestion_id=suggestion_id,
            expires_at=created_at + timedelta(hours=24),
        )

    # --- risk -------------------------------------------------------------------------

    def risk_passed(
        self, suggestion_id: UUID, warning: WarningLevel = WarningLevel.NONE, used: str = "0"
    ) -> RiskCheckPassed:
        return RiskCheckPassed(
            **self.env("risk"), suggestion_id=suggestion_id, assessment=assessment(warning, used)
        )

    def risk_failed(self, suggestion_id: UUID) -> RiskCheckFailed:
        return RiskCheckFailed(
            **self.env("risk"),
            suggestion_id=suggestion_id,
            reason=ErrorKind.RISK_BUDGET_EXCEEDED,
            message="max risk 230.00 exceeds the remaining 100.00",
            assessment=assessment(WarningLevel.CRITICAL, used="9900"),
        )

    def reserved(
        self, reservation_id: UUID, suggestion_id: UUID, *, limit: str = "3.70"
    ) -> RiskReserved:
        max_risk = 2 * WIDTH * 100 - d(limit) * 100
        return RiskReserved(
            **self.env("risk"),
            reservation_id=reservation_id,
            suggestion_id=suggestion_id,
            amount=max_risk,
            limit_credit=d(limit),
            assessment=assessment(max_risk=max_risk),
        )

    def reservation_failed(self, suggestion_id: UUID) -> RiskReservationFailed:
        return RiskReservationFailed(
            **self.env("risk"),
            suggestion_id=suggestion_id,
            reason=ErrorKind.RISK_BUDGET_EXCEEDED,
            message="another approval took the remaining budget first",
            assessment=None,
        )

    def released(
        self,
        reservation_id: UUID,
        suggestion_id: UUID,
        reason: ReleaseReason,
        order_id: UUID,
        amount: Decimal = MAX_RISK,
    ) -> RiskReleased:
        return RiskReleased(
            **self.env("risk"),
            reservation_id=reservation_id,
            suggestion_id=suggestion_id,
            amount=amount,
            reason=reason,
            order_id=order_id,
        )

    # --- execution --------------------------------------------------------------------

    def open_submitted(
        self, order_id: UUID, suggestion_id: UUID, reservation_id: UUID, limit: str = "3.70"
    ) -> OrderSubmitted:
        return OrderSubmitted(
            **self.env("execution"),
            order_id=order_id,
            client_tag=f"open-{order_id.hex[:16]}",
            purpose=OrderPurpose.OPEN,
            underlying="QQQ",
            legs=opening_legs(),
            limit_price=d(limit),
            time_in_force=TimeInForce.DAY,
            suggestion_id=suggestion_id,
            reservation_id=reservation_id,
        )

    def exit_submitted(self, placed: ExitOrderPlaced) -> OrderSubmitted:
        return OrderSubmitted(
            **self.env("execution"),
            order_id=placed.order_id,
            client_tag=f"exit-{placed.order_id.hex[:16]}",
            purpose=placed.purpose,
            underlying="QQQ",
            legs=placed.legs,
            limit_price=placed.limit_price,
            time_in_force=TimeInForce.GTC,
            position_id=placed.position_id,
            spread_kind=placed.spread_kind,
            replaces_order_id=placed.replaces_order_id,
        )

    def accepted(self, order_id: UUID) -> OrderAccepted:
        return OrderAccepted(
            **self.env("execution"), order_id=order_id, broker_order_id=f"B-{order_id.hex[:8]}"
        )

    def partially_filled(self, order_id: UUID, fills: tuple[LegFill, ...]) -> OrderPartiallyFilled:
        return OrderPartiallyFilled(
            **self.env("execution"),
            order_id=order_id,
            broker_order_id=f"B-{order_id.hex[:8]}",
            legs=fills,
        )

    def filled(self, order_id: UUID, fills: tuple[LegFill, ...]) -> OrderFilled:
        return OrderFilled(
            **self.env("execution"),
            order_id=order_id,
            broker_order_id=f"B-{order_id.hex[:8]}",
            legs=fills,
        )

    def order_rejected(self, order_id: UUID) -> OrderRejected:
        return OrderRejected(
            **self.env("execution"),
            order_id=order_id,
            kind=ErrorKind.ORDER_REJECTED,
            reason="Insufficient buying power for this order",
        )

    def cancelled(self, order_id: UUID, reason: CancelReason) -> OrderCancelled:
        return OrderCancelled(
            **self.env("execution"),
            order_id=order_id,
            broker_order_id=f"B-{order_id.hex[:8]}",
            reason=reason,
            message=f"cancelled ({reason.value.lower()})",
        )

    def order_expired(self, order_id: UUID) -> OrderExpired:
        return OrderExpired(
            **self.env("execution"), order_id=order_id, broker_order_id=f"B-{order_id.hex[:8]}"
        )

    def replaced(self, order_id: UUID, replacement: UUID) -> OrderReplaced:
        return OrderReplaced(
            **self.env("execution"),
            order_id=order_id,
            replacement_order_id=replacement,
            broker_order_id=f"B-{order_id.hex[:8]}",
        )

    # --- positions --------------------------------------------------------------------

    def position_opened(
        self, position_id: UUID, suggestion_id: UUID, order_id: UUID
    ) -> PositionOpened:
        spreads = tuple(
            PositionSpread(
                kind=kind,
                short_symbol=short,
                long_symbol=long,
                entry_credit=ENTRY_CREDITS[kind],
                profit_target=PROFIT_TARGETS[kind],
            )
            for kind, (short, long) in SPREAD_LEGS.items()
        )
        return PositionOpened(
            **self.env("position_monitor"),
            position_id=position_id,
            suggestion_id=suggestion_id,
            opening_order_id=order_id,
            underlying="QQQ",
            expiration=EXPIRATION,
            width=WIDTH,
            spreads=spreads,
            total_entry_credit=TOTAL_CREDIT,
            max_risk=MAX_RISK,
        )

    def exit_placed(
        self,
        position_id: UUID,
        kind: SpreadKind,
        purpose: OrderPurpose,
        debit: Decimal,
        reason: str,
        replaces: UUID | None = None,
    ) -> ExitOrderPlaced:
        return ExitOrderPlaced(
            **self.env("position_monitor"),
            position_id=position_id,
            spread_kind=kind,
            order_id=new_event_id(),
            purpose=purpose,
            legs=closing_legs(kind),
            limit_price=-debit,
            replaces_order_id=replaces,
            reason=reason,
        )

    def profit_target(self, position_id: UUID, kind: SpreadKind) -> ExitOrderPlaced:
        target = PROFIT_TARGETS[kind]
        debit = (ENTRY_CREDITS[kind] * (1 - target)).quantize(Decimal("0.01"))
        return self.exit_placed(
            position_id,
            kind,
            OrderPurpose.PROFIT_TARGET,
            debit,
            f"profit target {target:.0%} of entry credit {ENTRY_CREDITS[kind]}",
        )

    def updated(
        self,
        position_id: UUID,
        quotes: dict[OccSymbol, tuple[str, str]],
        kinds: tuple[SpreadKind, ...],
        dte: int,
    ) -> PositionUpdated:
        """A valuation of the ``kinds`` still open, computed from ``quotes``."""
        env = self.env("position_monitor")
        marks = tuple(quote(s, bid, ask, env["occurred_at"]) for s, (bid, ask) in quotes.items())
        by_symbol = {m.symbol: m for m in marks}
        spread_marks = []
        for kind in kinds:
            short, long = (by_symbol[s] for s in SPREAD_LEGS[kind])
            cost_mid = short.mid - long.mid
            spread_marks.append(
                SpreadMark(
                    kind=kind,
                    closing_cost_mid=cost_mid,
                    closing_cost_natural=short.ask - long.bid,
                    unrealized_pnl=(ENTRY_CREDITS[kind] - cost_mid) * 100,
                )
            )
        return PositionUpdated(
            **env,
            position_id=position_id,
            marks=marks,
            spreads=tuple(spread_marks),
            unrealized_pnl=sum((m.unrealized_pnl for m in spread_marks), Decimal(0)),
            dte=dte,
        )

    def spread_closed(
        self, position_id: UUID, kind: SpreadKind, reason: CloseReason, order_id: UUID, debit: str
    ) -> SpreadClosed:
        return SpreadClosed(
            **self.env("position_monitor"),
            position_id=position_id,
            spread_kind=kind,
            reason=reason,
            closing_order_id=order_id,
            exit_debit=d(debit),
            realized_pnl=(ENTRY_CREDITS[kind] - d(debit)) * 100,
        )

    def position_closed(self, position_id: UUID, realized: Decimal) -> PositionClosed:
        return PositionClosed(
            **self.env("position_monitor"), position_id=position_id, realized_pnl=realized
        )

    def needs_attention(self, position_id: UUID, order_id: UUID) -> PositionNeedsAttention:
        return PositionNeedsAttention(
            **self.env("position_monitor"),
            position_id=position_id,
            underlying="QQQ",
            reason=AttentionReason.PARTIAL_FILL,
            message="opening order partly filled: 1 of 2 put spreads",
            order_id=order_id,
            app_managed=False,
        )

    def attention_cleared(self, position_id: UUID) -> PositionAttentionCleared:
        return PositionAttentionCleared(
            **self.env("position_monitor"),
            position_id=position_id,
            message="opening order filled completely",
        )


def unhappy_paths(s: Script) -> list[Event]:
    """Suggestions that do not become positions; ends with an order event the lifecycle
    refuses (a cancel echoed after a rejection), which the folds keep as an anomaly."""
    events: list[Event] = [s.skipped()]
    s.new_correlation()
    over_budget = new_event_id()
    events += [s.generated(over_budget), s.risk_failed(over_budget), s.rejected(over_budget)]
    s.new_correlation()
    raced = new_event_id()
    events += [
        s.generated(raced),
        s.risk_passed(raced, WarningLevel.WARNING, used="6970"),
        s.approved(raced, warning=WarningLevel.WARNING),
        s.reservation_failed(raced),
    ]
    s.new_correlation()
    refused, reservation, order = new_event_id(), new_event_id(), new_event_id()
    events += [
        s.generated(refused, automatic=True),
        s.risk_passed(refused),
        s.approved(refused, limit="3.65", automatic=True),
        s.reserved(reservation, refused, limit="3.65"),
        s.open_submitted(order, refused, reservation, limit="3.65"),
        s.order_rejected(order),
        s.released(reservation, refused, ReleaseReason.REJECTED, order, amount=d(235)),
        s.cancelled(order, CancelReason.BROKER),
    ]
    return events


def opened_trade(s: Script, *, close_all: bool) -> list[Event]:
    """Approve, reserve, fill (partly first), open, place exits, value, close spreads."""
    s.new_correlation()
    suggestion_id, reservation, order, position = (new_event_id() for _ in range(4))
    events: list[Event] = [
        s.generated(suggestion_id),
        s.risk_passed(suggestion_id),
        s.approved(suggestion_id),
        s.reserved(reservation, suggestion_id),
        s.open_submitted(order, suggestion_id, reservation),
        s.accepted(order),
    ]
    first = (
        s.fill(PUT_592, OrderAction.SELL_TO_OPEN, FILL_PRICES[PUT_592]),
        s.fill(PUT_589, OrderAction.BUY_TO_OPEN, FILL_PRICES[PUT_589]),
    )
    rest = (
        s.fill(PUT_592, OrderAction.SELL_TO_OPEN, FILL_PRICES[PUT_592]),
        s.fill(PUT_589, OrderAction.BUY_TO_OPEN, FILL_PRICES[PUT_589]),
        s.fill(CALL_592, OrderAction.SELL_TO_OPEN, FILL_PRICES[CALL_592]),
        s.fill(CALL_595, OrderAction.BUY_TO_OPEN, FILL_PRICES[CALL_595]),
    )
    events += [
        s.partially_filled(order, first),
        s.needs_attention(position, order),
        s.filled(order, first + rest),
        s.released(reservation, suggestion_id, ReleaseReason.FILLED, order),
        s.position_opened(position, suggestion_id, order),
        s.attention_cleared(position),
    ]
    exits: dict[SpreadKind, ExitOrderPlaced] = {}
    for kind in SpreadKind:
        placed = exits[kind] = s.profit_target(position, kind)
        events += [placed, s.exit_submitted(placed), s.accepted(placed.order_id)]
    all_kinds = tuple(SpreadKind)
    calm = {CALL_592: ("7.90", "8.00"), CALL_595: ("6.70", "6.80")}
    events.append(
        s.updated(
            position, {PUT_592: ("8.40", "8.50"), PUT_589: ("7.60", "7.70"), **calm}, all_kinds, 40
        )
    )
    # Put spread 2 reaches its 60 % target: closed for a debit of 0.44.
    ps2 = exits[SpreadKind.PUT_SPREAD_2].order_id
    events += [
        s.filled(
            ps2,
            (
                s.fill(PUT_592, OrderAction.BUY_TO_CLOSE, d("8.00")),
                s.fill(PUT_589, OrderAction.SELL_TO_CLOSE, d("7.56")),
            ),
        ),
        s.spread_closed(position, SpreadKind.PUT_SPREAD_2, CloseReason.PROFIT_TARGET, ps2, "0.44"),
    ]
    left = (SpreadKind.PUT_SPREAD_1, SpreadKind.CALL_SPREAD)
    puts = {PUT_592: ("8.30", "8.40"), PUT_589: ("7.60", "7.70")}
    events.append(s.updated(position, {**puts, **calm}, left, 39))
    # The call spread's closing cost at mid reaches 3.00 = 2 x 1.50: stop loss, re-priced.
    stressed = {CALL_592: ("9.90", "10.10"), CALL_595: ("6.90", "7.10")}
    events.append(s.updated(position, {**puts, **stressed}, left, 38))
    target = exits[SpreadKind.CALL_SPREAD].order_id
    stop = s.exit_placed(
        position,
        SpreadKind.CALL_SPREAD,
        OrderPurpose.STOP_LOSS,
        d("3.20"),
        "closing cost 3.00 >= 2 x entry credit 1.50",
        replaces=target,
    )
    events += [
        stop,
        s.cancelled(target, CancelReason.STOP_LOSS),
        s.exit_submitted(stop),
        s.accepted(stop.order_id),
    ]
    repriced = s.exit_placed(
        position,
        SpreadKind.CALL_SPREAD,
        OrderPurpose.STOP_LOSS,
        d("3.10"),
        "re-priced to the natural closing debit 3.10",
        replaces=stop.order_id,
    )
    events += [
        repriced,
        s.exit_submitted(repriced),
        s.replaced(stop.order_id, repriced.order_id),
        s.accepted(repriced.order_id),
        s.filled(
            repriced.order_id,
            (
                s.fill(CALL_592, OrderAction.BUY_TO_CLOSE, d("10.00")),
                s.fill(CALL_595, OrderAction.SELL_TO_CLOSE, d("6.90")),
            ),
        ),
        s.spread_closed(
            position, SpreadKind.CALL_SPREAD, CloseReason.STOP_LOSS, repriced.order_id, "3.10"
        ),
    ]
    if close_all:
        events += _time_exit(s, position, exits[SpreadKind.PUT_SPREAD_1].order_id)
    return events


def _time_exit(s: Script, position: UUID, target: UUID) -> list[Event]:
    """Put spread 1 closed at 7 DTE for 0.90, which closes the position."""
    exit_ = s.exit_placed(
        position,
        SpreadKind.PUT_SPREAD_1,
        OrderPurpose.TIME_EXIT,
        d("1.10"),
        "7 DTE: closing at a ceiling of the entry credit",
        replaces=target,
    )
    return [
        exit_,
        s.cancelled(target, CancelReason.TIME_EXIT),
        s.exit_submitted(exit_),
        s.accepted(exit_.order_id),
        s.filled(
            exit_.order_id,
            (
                s.fill(PUT_592, OrderAction.BUY_TO_CLOSE, d("8.20")),
                s.fill(PUT_589, OrderAction.SELL_TO_CLOSE, d("7.30")),
            ),
        ),
        s.spread_closed(
            position, SpreadKind.PUT_SPREAD_1, CloseReason.TIME_EXIT, exit_.order_id, "0.90"
        ),
        # 66 (put spread 2) - 160 (call spread) + 20 (put spread 1).
        s.position_closed(position, d(-74)),
    ]


def account_history(account: str, *, close_all: bool, start: datetime = START) -> list[Event]:
    """Everything ``account`` lives through, in publication order (times increasing)."""
    s = Script(account, clock=start)
    events = unhappy_paths(s)
    expiring = new_event_id()
    s.new_correlation()
    generated = s.generated(expiring)
    events += [generated, s.risk_passed(expiring)]
    events += opened_trade(s, close_all=close_all)
    s.wait(timedelta(hours=24))
    events.append(s.expired(expiring, generated.occurred_at))
    return events
