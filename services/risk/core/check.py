"""Verdicts: the budget check, reservations, the warning gate and the broker's dry run.

Each verdict is a `RiskCheck`: a complete ``RiskAssessment`` plus, when the trade may not
go ahead, a `Failure` with the error kind, a readable message and the numbers.

The service's approval flow, under its per-account lock::

    result = reserve(account, pending, suggestion_id, max_risk, stressed=..., approval=event)
    if result.passed:
        result = result.with_dry_run(DryRunVerdict.of(await broker.dry_run(order)))
    # result.passed -> RiskReserved (result.reserved is the new pending set),
    # else RiskReservationFailed(reason=result.check.failure.kind, ...)

Failures are ranked budget, then warning confirmation, then buying power: a trade that
does not fit the budget is reported as such whatever else is wrong with it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

from libs.contracts.errors import (
    ErrorKind,
    InsufficientBuyingPower,
    RiskBudgetExceeded,
    RiskError,
    RiskWarningUnconfirmed,
)
from libs.contracts.risk import RiskAssessment, WarningLevel
from services.risk.core.budget import (
    WARNING_THRESHOLDS,
    ZERO,
    AccountRisk,
    Budget,
    severity,
)

K = TypeVar("K", bound=Hashable)

_ERRORS: Mapping[ErrorKind, type[RiskError]] = MappingProxyType(
    {
        ErrorKind.RISK_BUDGET_EXCEEDED: RiskBudgetExceeded,
        ErrorKind.INSUFFICIENT_BUYING_POWER: InsufficientBuyingPower,
        ErrorKind.RISK_WARNING_UNCONFIRMED: RiskWarningUnconfirmed,
    }
)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a trade may not go ahead: the kind, a message a user can read, the numbers."""

    kind: ErrorKind
    message: str
    details: Mapping[str, str] = field(default_factory=dict)

    def error(self) -> RiskError:
        """The typed exception for this failure (``to_reply()`` gives the wire form)."""
        return _ERRORS.get(self.kind, RiskError)(self.message, kind=self.kind, details=self.details)


@dataclass(frozen=True, slots=True)
class DryRunVerdict:
    """What the core needs from the broker's dry run (``libs.broker.models.DryRunResult``)."""

    new_buying_power: Decimal
    change_in_buying_power: Decimal
    current_buying_power: Decimal | None = None
    errors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("new_buying_power", "change_in_buying_power"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{name} must be a finite Decimal, got {value!r}")

    @property
    def sufficient(self) -> bool:
        """As the broker adapter judges it: no broker error and buying power stays >= 0."""
        return not self.errors and self.new_buying_power >= 0

    @classmethod
    def of(cls, result: DryRunLike) -> DryRunVerdict:
        """From a broker dry-run result (anything shaped like ``DryRunResult``)."""
        effect = result.buying_power_effect
        return cls(
            new_buying_power=effect.new_buying_power,
            change_in_buying_power=effect.change_in_buying_power,
            current_buying_power=effect.current_buying_power,
            errors=tuple(result.errors),
        )


class BuyingPowerEffectLike(Protocol):
    """The fields of ``libs.broker.models.BuyingPowerEffect`` the core reads."""

    @property
    def new_buying_power(self) -> Decimal: ...
    @property
    def change_in_buying_power(self) -> Decimal: ...
    @property
    def current_buying_power(self) -> Decimal: ...


class DryRunLike(Protocol):
    """The fields of ``libs.broker.models.DryRunResult`` the core reads."""

    @property
    def buying_power_effect(self) -> BuyingPowerEffectLike: ...
    @property
    def errors(self) -> Sequence[str]: ...


class ApprovalLike(Protocol):
    """The fields of ``SuggestionApproved`` the warning gate reads."""

    @property
    def automatic(self) -> bool: ...
    @property
    def warning_level(self) -> WarningLevel: ...
    @property
    def warning_confirmed(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Approval:
    """An approval's warning fields as plain values (a ``SuggestionApproved`` also fits)."""

    automatic: bool = False
    warning_level: WarningLevel = WarningLevel.NONE
    """The level the user was shown (the suggestion's risk check)."""
    warning_confirmed: bool = False


@dataclass(frozen=True, slots=True)
class RiskCheck:
    """The assessment of one trade and, when it may not go ahead, why."""

    assessment: RiskAssessment
    failure: Failure | None = None

    @property
    def passed(self) -> bool:
        """The trade may go ahead."""
        return self.failure is None

    def with_dry_run(self, verdict: DryRunVerdict) -> RiskCheck:
        """This check with the broker's dry run: its buying-power change is recorded and an
        insufficient verdict fails a check that had passed (INSUFFICIENT_BUYING_POWER).
        """
        assessment = self.assessment.model_copy(
            update={"dry_run_buying_power_change": verdict.change_in_buying_power}
        )
        failure = self.failure
        if failure is None and not verdict.sufficient:
            failure = _insufficient(verdict)
        return RiskCheck(assessment, failure)


def _percent(ratio: Decimal) -> str:
    """A ratio as a percentage for messages (2 places); decisions never use this."""
    return f"{(ratio * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)} %"


def _budget_details(a: RiskAssessment) -> dict[str, str]:
    return {
        "trade_max_risk": str(a.trade_max_risk),
        "remaining_risk": str(a.remaining_risk),
        "available_risk": str(a.available_risk),
        "used_risk": str(a.used_risk),
        "tradeable_capital": str(a.tradeable_capital),
        "tolerance": str(a.tolerance),
        "buying_power": str(a.buying_power),
    }


def _over_budget(a: RiskAssessment) -> Failure:
    if a.available_risk <= 0:
        message = (
            f"no risk budget: available risk is {a.available_risk} (tradeable capital "
            f"{a.tradeable_capital} x tolerance {a.tolerance}), so no trade can be made"
        )
    else:
        message = (
            f"max risk {a.trade_max_risk} exceeds the remaining risk budget "
            f"{a.remaining_risk} (available {a.available_risk} = tradeable capital "
            f"{a.tradeable_capital} x tolerance {a.tolerance}; used {a.used_risk})"
        )
    return Failure(ErrorKind.RISK_BUDGET_EXCEEDED, message, _budget_details(a))


def _insufficient(verdict: DryRunVerdict) -> Failure:
    reason = "; ".join(verdict.errors) or (
        f"new buying power would be {verdict.new_buying_power} "
        f"(change {verdict.change_in_buying_power})"
    )
    details = {
        "new_buying_power": str(verdict.new_buying_power),
        "change_in_buying_power": str(verdict.change_in_buying_power),
    }
    if verdict.current_buying_power is not None:
        details["current_buying_power"] = str(verdict.current_buying_power)
    if verdict.errors:
        details["broker_errors"] = "; ".join(verdict.errors)
    return Failure(
        ErrorKind.INSUFFICIENT_BUYING_POWER,
        f"the broker's dry run refuses the order: {reason}",
        details,
    )


def check(budget: Budget, trade_max_risk: Decimal) -> RiskCheck:
    """Pass when the budget is positive and ``trade_max_risk <= remaining``; else
    RISK_BUDGET_EXCEEDED with every figure. ``trade_max_risk`` must be non-negative.
    """
    assessment = budget.assessment(trade_max_risk)
    if budget.fits(trade_max_risk):
        return RiskCheck(assessment)
    return RiskCheck(assessment, _over_budget(assessment))


def warning_gate(assessment: RiskAssessment, approval: ApprovalLike) -> Failure | None:
    """RISK_WARNING_UNCONFIRMED when the trade reaches a warning level the approval did
    not confirm; None when it may go ahead.

    Automatic approvals are not exempt: the automation cannot confirm, and a warning
    exists so that a human does. An automatic approval reaching a warning level at its
    (conceded) limit credit is refused and left to the user. A confirmation covers the
    level the user was shown and below: if the re-check at the order's credit reaches a
    higher level (WARNING -> CRITICAL), the user has not seen it, so it is refused.
    """
    level = assessment.warning_level
    if level is WarningLevel.NONE:
        return None
    if approval.warning_confirmed and severity(level) <= severity(approval.warning_level):
        return None
    warning, critical = WARNING_THRESHOLDS[assessment.template]
    threshold = critical if level is WarningLevel.CRITICAL else warning
    shown = (
        "an automatic approval cannot confirm a warning"
        if approval.automatic
        else "the approval did not confirm the warning"
        if not approval.warning_confirmed
        else f"the approval confirmed only {approval.warning_level}"
    )
    if assessment.utilisation is None:
        used = "no risk budget"
    else:
        used = f"utilisation after the trade would be {_percent(assessment.utilisation)}"
    details = _budget_details(assessment) | {
        "warning_level": level.value,
        "threshold": str(threshold),
        "confirmed_level": approval.warning_level.value,
        "warning_confirmed": str(approval.warning_confirmed).lower(),
    }
    if assessment.utilisation is not None:
        details["utilisation"] = str(assessment.utilisation)
    return Failure(
        ErrorKind.RISK_WARNING_UNCONFIRMED,
        f"{used}, {level} for the {assessment.template.value.lower()} template "
        f"(at or above {_percent(threshold)}); {shown}",
        details,
    )


@dataclass(frozen=True, slots=True)
class Reservation(Generic[K]):
    """The verdict on reserving ``amount`` for ``key`` against the pending set ``before``."""

    key: K
    amount: Decimal
    before: Mapping[K, Decimal]
    check: RiskCheck

    @property
    def passed(self) -> bool:
        """The reservation is made."""
        return self.check.passed

    @property
    def reserved(self) -> Mapping[K, Decimal]:
        """The pending set after the verdict: ``before``, plus ``key`` if it passed."""
        if not self.passed:
            return self.before
        return MappingProxyType({**self.before, self.key: self.amount})

    def with_dry_run(self, verdict: DryRunVerdict) -> Reservation[K]:
        """This reservation after the broker's dry run (see `RiskCheck.with_dry_run`)."""
        return replace(self, check=self.check.with_dry_run(verdict))


def reserve(
    account: AccountRisk,
    reserved: Mapping[K, Decimal],
    key: K,
    amount: Decimal,
    *,
    stressed: bool,
    approval: ApprovalLike | None = None,
) -> Reservation[K]:
    """Whether ``amount`` (the max risk at the order's limit credit) fits beside ``reserved``.

    ``reserved`` is every pending reservation by key (the suggestion id). Because a pass
    means ``used + amount <= available``, reservations decided one after another (the
    service holds a per-account lock) can never together exceed the budget.

    With ``approval``, a trade that fits must also pass `warning_gate`.

    A key already pending is an error (ValueError): a repeated approval is answered from
    the projection, never re-decided, since a failure for a suggestion would void the
    reservation its order may already be working on.
    """
    if key in reserved:
        raise ValueError(f"{key!r} already holds a pending reservation")
    budget = Budget(account, stressed=stressed, reserved_risk=sum(reserved.values(), ZERO))
    verdict = check(budget, amount)
    if verdict.passed and approval is not None:
        refused = warning_gate(verdict.assessment, approval)
        if refused is not None:
            verdict = RiskCheck(verdict.assessment, refused)
    return Reservation(key, amount, reserved, verdict)
