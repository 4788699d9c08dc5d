"""From an opening fill to a position and its profit targets (DOMAIN.md 6, pure).

Entry credit of a spread = short leg's fill price - long leg's fill price (per share,
quantity-weighted over the fills of each leg). The two put spreads share their legs, so
they share their entry credit. Max risk of the Trident = 2 x W x 100 - total credit x
100 (only one side can lose at expiry), never below zero.

Profit target of a spread: a GTC closing debit of entry credit x (1 - target), i.e.
keep 40 / 60 / 50 % of the credit; negative (a debit) and rounded up to the tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from libs.contracts.execution import LegFill, OrderAction, OrderLeg, OrderPurpose
from libs.contracts.positions import PositionSpread
from libs.contracts.strategy import PROFIT_TARGETS, SpreadKind
from libs.contracts.symbols import OccSymbol, OptionType
from libs.domain.money import TICK, marketable
from libs.domain.trident import closing_legs, trident_risk
from services.execution.core.ids import profit_target_order_id
from services.execution.core.orders import InvalidOrder, OrderSpec, exit_order


@dataclass(frozen=True, slots=True)
class PositionPlan:
    """What ``PositionOpened`` says about a filled opening order."""

    underlying: str
    expiration: date
    width: Decimal
    spreads: tuple[PositionSpread, ...]
    total_entry_credit: Decimal
    max_risk: Decimal


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """A profit-target exit of one spread: its order and why."""

    spread_kind: SpreadKind
    order: OrderSpec
    reason: str


def average_fill_price(fills: Sequence[LegFill], symbol: str) -> Decimal:
    """Quantity-weighted fill price of ``symbol`` (per share); raises when unfilled."""
    mine = [f for f in fills if f.symbol == symbol]
    quantity = sum(f.quantity for f in mine)
    if not quantity:
        raise InvalidOrder(f"{symbol} has no fill")
    return sum((f.fill_price * f.quantity for f in mine), Decimal(0)) / quantity


def entry_credit(fills: Sequence[LegFill], short: str, long: str) -> Decimal:
    """Short fill price - long fill price (per share)."""
    return average_fill_price(fills, short) - average_fill_price(fills, long)


def _leg(legs: Sequence[OrderLeg], action: OrderAction, option_type: OptionType) -> OrderLeg | None:
    found = [
        leg
        for leg in legs
        if leg.action is action and leg.symbol.contract.option_type is option_type
    ]
    if len(found) > 1:
        raise InvalidOrder(f"more than one {action} {option_type} leg")
    return found[0] if found else None


def plan_position(legs: Sequence[OrderLeg], fills: Sequence[LegFill]) -> PositionPlan:
    """The position a completely filled Trident opening (2:2[:1:1]) opens."""
    short_put = _leg(legs, OrderAction.SELL_TO_OPEN, OptionType.PUT)
    long_put = _leg(legs, OrderAction.BUY_TO_OPEN, OptionType.PUT)
    if short_put is None or long_put is None:
        raise InvalidOrder("a Trident opening has a short and a long put leg")
    if short_put.quantity != long_put.quantity or short_put.quantity % 2:
        raise InvalidOrder("the put legs of a Trident are two spreads of equal quantity")
    per_spread = short_put.quantity // 2
    put_credit = entry_credit(fills, short_put.symbol, long_put.symbol)
    spreads = [
        PositionSpread(
            kind=kind,
            short_symbol=short_put.symbol,
            long_symbol=long_put.symbol,
            quantity=per_spread,
            entry_credit=put_credit,
            profit_target=PROFIT_TARGETS[kind],
        )
        for kind in (SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2)
    ]
    short_call = _leg(legs, OrderAction.SELL_TO_OPEN, OptionType.CALL)
    long_call = _leg(legs, OrderAction.BUY_TO_OPEN, OptionType.CALL)
    if (short_call is None) != (long_call is None):
        raise InvalidOrder("a call spread needs both a short and a long call")
    if short_call is not None and long_call is not None:
        if short_call.quantity != long_call.quantity:
            raise InvalidOrder("the call legs of a Trident have equal quantities")
        spreads.append(
            PositionSpread(
                kind=SpreadKind.CALL_SPREAD,
                short_symbol=short_call.symbol,
                long_symbol=long_call.symbol,
                quantity=short_call.quantity,
                entry_credit=entry_credit(fills, short_call.symbol, long_call.symbol),
                profit_target=PROFIT_TARGETS[SpreadKind.CALL_SPREAD],
            )
        )
    widths = {s.width for s in spreads}
    if len(widths) != 1:
        raise InvalidOrder(f"the spreads of a Trident share one width, got {sorted(widths)}")
    width = widths.pop()
    total = sum((s.entry_credit * s.quantity for s in spreads), Decimal(0))
    # Both put spreads lose together (same strikes); at expiry only one side can lose.
    at_risk = trident_risk(width, total, quantity=per_spread).max_risk
    return PositionPlan(
        underlying=short_put.symbol.contract.root,
        expiration=short_put.symbol.contract.expiration,
        width=width,
        spreads=tuple(spreads),
        total_entry_credit=total,
        max_risk=max(at_risk, Decimal(0)),
    )


def profit_target_debit(entry: Decimal, target: Decimal) -> Decimal:
    """The signed closing limit: -(entry credit x (1 - target)), debit rounded up."""
    return marketable(-(entry * (1 - target)))


def profit_targets(
    plan: PositionPlan, position_id: UUID
) -> tuple[tuple[ExitPlan, ...], tuple[tuple[SpreadKind, str], ...]]:
    """The GTC profit-target exit of every spread, and the spreads that get none (why).

    A spread whose entry credit is not positive has nothing to take profit on; a debit
    that rounds to zero would be no limit order at all, so the smallest debit is a tick.
    """
    exits: list[ExitPlan] = []
    skipped: list[tuple[SpreadKind, str]] = []
    for spread in plan.spreads:
        if spread.entry_credit <= 0:
            skipped.append(
                (spread.kind, f"entry credit {spread.entry_credit} leaves no profit to take")
            )
            continue
        price = min(profit_target_debit(spread.entry_credit, spread.profit_target), -TICK)
        order = exit_order(
            order_id=profit_target_order_id(position_id, spread.kind),
            underlying=plan.underlying,
            position_id=position_id,
            spread_kind=spread.kind,
            purpose=OrderPurpose.PROFIT_TARGET,
            legs=closing_legs(
                OccSymbol(spread.short_symbol), OccSymbol(spread.long_symbol), spread.quantity
            ),
            limit_price=price,
        )
        keep = (spread.profit_target * 100).normalize()
        reason = (
            f"profit target {keep:f} % of entry credit {spread.entry_credit}: "
            f"close at a debit of {-price}"
        )
        exits.append(ExitPlan(spread.kind, order, reason))
    return tuple(exits), tuple(skipped)
