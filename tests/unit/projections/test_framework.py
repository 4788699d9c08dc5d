"""The generic fold: handler tables, projections, and several projections per account."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from libs.contracts.account import BalanceUpdated
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind
from libs.contracts.system import TradingResumed, TradingSuspended
from libs.projections import AccountFold, Anomaly, Handlers, Projection, with_anomaly

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Suspension:
    suspended: bool = False
    reasons: tuple[str, ...] = ()
    buying_power: Decimal | None = None


handlers: Handlers[Suspension] = Handlers()


@handlers.on(TradingSuspended)
def _suspended(state: Suspension, event: TradingSuspended) -> Suspension:
    return replace(state, suspended=True, reasons=(*state.reasons, event.reason.value))


@handlers.on(TradingResumed)
def _resumed(state: Suspension, event: TradingResumed) -> Suspension:
    return replace(state, suspended=False)


SUSPENSION = Projection("suspension", Suspension(), handlers)


def suspended(account: str = "5WT00001") -> TradingSuspended:
    return TradingSuspended(
        occurred_at=NOW,
        producer="test",
        account_id=account,
        correlation_id=new_event_id(),
        reason=ErrorKind.BROKER_UNAVAILABLE,
        message="broker unreachable",
    )


def resumed(account: str = "5WT00001") -> TradingResumed:
    return TradingResumed(
        occurred_at=NOW,
        producer="test",
        account_id=account,
        correlation_id=new_event_id(),
        message="broker back",
    )


def balance(account: str = "5WT00001") -> BalanceUpdated:
    return BalanceUpdated(
        occurred_at=NOW,
        producer="test",
        account_id=account,
        correlation_id=new_event_id(),
        derivative_buying_power=Decimal("20000.00"),
        net_liquidating_value=Decimal("25000.00"),
        cash_balance=Decimal("25000.00"),
        broker_updated_at=NOW,
    )


def test_handlers_dispatch_on_the_event_class() -> None:
    state = handlers.apply(Suspension(), suspended())
    assert state.suspended
    assert handlers.apply(state, resumed()) == Suspension(reasons=("BROKER_UNAVAILABLE",))


def test_events_without_a_handler_leave_the_very_same_state() -> None:
    state = Suspension()
    assert handlers.apply(state, balance()) is state


def test_a_class_gets_one_handler() -> None:
    with pytest.raises(TypeError, match="TradingSuspended"):
        handlers.on(TradingSuspended)(_suspended)


def test_event_types_lists_the_folded_classes() -> None:
    assert handlers.event_types == frozenset({TradingSuspended, TradingResumed})


def test_projection_folds_in_order_from_its_initial_state() -> None:
    assert SUSPENSION.fold([suspended(), resumed(), suspended()]).suspended
    assert not SUSPENSION.fold([suspended(), resumed()]).suspended
    assert SUSPENSION.fold([]) is SUSPENSION.initial


def test_projection_folds_onto_a_given_state() -> None:
    halfway = SUSPENSION.fold([suspended()])
    assert SUSPENSION.fold([suspended()], halfway).reasons == ("BROKER_UNAVAILABLE",) * 2


def test_rendered_state_has_decimals_as_strings() -> None:
    state = Suspension(buying_power=Decimal("20000.10"))
    assert SUSPENSION.to_json(state) == {
        "suspended": False,
        "reasons": [],
        "buying_power": "20000.10",
    }


def test_an_account_fold_ignores_other_accounts() -> None:
    fold = AccountFold.start("5WT00001", [SUSPENSION])
    assert fold.apply(suspended("5WT00002")) is fold
    assert fold.apply(suspended()).state(SUSPENSION).suspended


def test_an_account_fold_is_unchanged_when_no_projection_changes() -> None:
    fold = AccountFold.start("5WT00001", [SUSPENSION])
    assert fold.apply(balance()) is fold


def test_an_account_fold_renders_each_projection_by_name() -> None:
    fold = AccountFold.start("5WT00001", [SUSPENSION]).fold([suspended()])
    assert fold.to_json() == {
        "suspension": {"suspended": True, "reasons": ["BROKER_UNAVAILABLE"], "buying_power": None}
    }


def test_projection_names_are_unique_in_a_fold() -> None:
    with pytest.raises(ValueError, match="unique"):
        AccountFold.start("5WT00001", [SUSPENSION, SUSPENSION])


def test_state_of_a_foreign_projection_is_refused() -> None:
    other = Projection("other", Suspension(), handlers)
    with pytest.raises(KeyError, match="other"):
        AccountFold.start("5WT00001", [SUSPENSION]).state(other)


def test_an_anomaly_is_kept_once_per_event() -> None:
    event: Event = suspended()
    once = with_anomaly((), event, "odd")
    assert once == (Anomaly(event.event_id, "TradingSuspended", NOW, "odd"),)
    assert with_anomaly(once, event, "odd again") is once
    assert isinstance(once[0].event_id, UUID)
