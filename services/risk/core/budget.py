"""The risk budget (DOMAIN.md 4): tolerance, available / used / remaining, utilisation, warnings.

Money is exact: sums of the inputs and products with the two-decimal tolerances, never
rounded (``10000.00 x 0.40`` is ``4000.0000``). Utilisation is the one quotient; it is
computed in a fixed 28-digit context for the events and the display, but no decision
compares it: the verdict and the warning level compare exact products instead
(``trade <= available - used``, ``used + trade >= threshold x available``), so no rounding
can move a trade across a boundary.

Decisions on the edges (DOMAIN.md leaves them open):

- A budget whose available risk is not above zero (zero or negative buying power, no
  positions) fails every trade, even one of zero max risk; its utilisation is undefined
  (``None``) and its warning level is ``CRITICAL`` (nothing is left to use).
- A warning level is reached *at* its threshold: 65.00 % exactly is ``WARNING`` for the
  conservative template, 80.00 % exactly is ``CRITICAL``.
- The warning thresholds belong to the template; a stressed market raises the tolerance
  (and so the available risk) but not the thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from types import MappingProxyType

from libs.contracts.risk import RiskAssessment, RiskBudgetView, RiskTemplate, WarningLevel

ZERO = Decimal(0)

#: The template's tolerance: the share of tradeable capital that may be at risk.
BASE_TOLERANCE: Mapping[RiskTemplate, Decimal] = MappingProxyType(
    {
        RiskTemplate.CONSERVATIVE: Decimal("0.40"),
        RiskTemplate.MODERATE: Decimal("0.50"),
        RiskTemplate.AGGRESSIVE: Decimal("0.60"),
    }
)
#: A stressed market multiplies the tolerance by this, up to `TOLERANCE_CAP`.
STRESS_FACTOR = Decimal("1.5")
TOLERANCE_CAP = Decimal("0.60")

#: Utilisation (after the trade) at which WARNING, then CRITICAL, is reached.
WARNING_THRESHOLDS: Mapping[RiskTemplate, tuple[Decimal, Decimal]] = MappingProxyType(
    {
        RiskTemplate.CONSERVATIVE: (Decimal("0.65"), Decimal("0.80")),
        RiskTemplate.MODERATE: (Decimal("0.70"), Decimal("0.85")),
        RiskTemplate.AGGRESSIVE: (Decimal("0.75"), Decimal("0.90")),
    }
)

#: Fixed so the quotient does not depend on the calling thread's decimal context.
_RATIO = Context(prec=28, rounding=ROUND_HALF_EVEN)

_SEVERITY = {WarningLevel.NONE: 0, WarningLevel.WARNING: 1, WarningLevel.CRITICAL: 2}


def severity(level: WarningLevel) -> int:
    """NONE < WARNING < CRITICAL as 0, 1, 2 (the enum's values do not order)."""
    return _SEVERITY[level]


def parse_template(name: str | RiskTemplate) -> RiskTemplate:
    """The template named ``name`` in any case (snapshots write ``"conservative"``)."""
    try:
        return RiskTemplate(str(name).upper())
    except ValueError:
        choices = ", ".join(t.value.lower() for t in RiskTemplate)
        raise ValueError(f"unknown risk template {name!r} (one of {choices})") from None


def tolerance(template: RiskTemplate, *, stressed: bool) -> Decimal:
    """The template's tolerance, or min(base x 1.5, 0.60) when the market is stressed."""
    base = BASE_TOLERANCE[template]
    if not stressed:
        return base
    raised = base * STRESS_FACTOR
    # The cap itself when reached, so 0.40 x 1.5 reads 0.60 rather than 0.600.
    return TOLERANCE_CAP if raised >= TOLERANCE_CAP else raised


def utilisation(exposure: Decimal, available: Decimal) -> Decimal | None:
    """exposure / available (1 = 100 %); None when available is not above zero."""
    if available <= 0:
        return None
    return _RATIO.divide(exposure, available)


def warning_level(template: RiskTemplate, exposure: Decimal, available: Decimal) -> WarningLevel:
    """The level ``exposure / available`` reaches, compared exactly (at a threshold = reached).

    CRITICAL when available is not above zero: there is no budget left to use.
    """
    if available <= 0:
        return WarningLevel.CRITICAL
    warning, critical = WARNING_THRESHOLDS[template]
    if exposure >= critical * available:
        return WarningLevel.CRITICAL
    if exposure >= warning * available:
        return WarningLevel.WARNING
    return WarningLevel.NONE


def _finite(name: str, value: Decimal, *, non_negative: bool = False) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
    if non_negative and value < 0:
        raise ValueError(f"{name} cannot be negative, got {value}")


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """The account's side of the budget: template, buying power, open positions' max risk.

    ``buying_power`` is the broker's derivative buying power and may be negative.
    """

    template: RiskTemplate
    buying_power: Decimal
    open_positions_max_risk: Decimal = ZERO
    """Sum of the max risk of open app-managed positions (the projection's total)."""

    def __post_init__(self) -> None:
        _finite("buying_power", self.buying_power)
        _finite("open_positions_max_risk", self.open_positions_max_risk, non_negative=True)

    @classmethod
    def of_positions(
        cls, template: RiskTemplate, buying_power: Decimal, positions_max_risk: Iterable[Decimal]
    ) -> AccountRisk:
        """From each open position's max risk (each must be non-negative)."""
        values = tuple(positions_max_risk)
        for value in values:
            _finite("a position's max_risk", value, non_negative=True)
        return cls(template, buying_power, sum(values, ZERO))

    @property
    def tradeable_capital(self) -> Decimal:
        """Buying power + max risk of open app-managed positions."""
        return self.buying_power + self.open_positions_max_risk


@dataclass(frozen=True, slots=True)
class Budget:
    """The budget a trade is checked against: an account, its reservations, the market."""

    account: AccountRisk
    stressed: bool = False
    """The trade's underlying is stressed at the time of the check."""
    reserved_risk: Decimal = ZERO
    """Sum of pending reservations (approved, not yet filled or released)."""

    def __post_init__(self) -> None:
        _finite("reserved_risk", self.reserved_risk, non_negative=True)

    @property
    def template(self) -> RiskTemplate:
        """The account's template."""
        return self.account.template

    @property
    def base_tolerance(self) -> Decimal:
        """The template's tolerance, unstressed."""
        return BASE_TOLERANCE[self.account.template]

    @property
    def tolerance(self) -> Decimal:
        """The tolerance applied to this check."""
        return tolerance(self.account.template, stressed=self.stressed)

    @property
    def tradeable_capital(self) -> Decimal:
        """Buying power + max risk of open app-managed positions."""
        return self.account.tradeable_capital

    @property
    def available(self) -> Decimal:
        """Tradeable capital x tolerance."""
        return self.tradeable_capital * self.tolerance

    @property
    def used(self) -> Decimal:
        """Open positions' max risk + pending reservations."""
        return self.account.open_positions_max_risk + self.reserved_risk

    @property
    def remaining(self) -> Decimal:
        """Available - used; negative when over budget."""
        return self.available - self.used

    def fits(self, trade_max_risk: Decimal) -> bool:
        """The trade may go ahead on budget: available > 0 and max risk <= remaining."""
        _finite("trade_max_risk", trade_max_risk, non_negative=True)
        return self.available > 0 and trade_max_risk <= self.remaining

    def utilisation(self, trade_max_risk: Decimal = ZERO) -> Decimal | None:
        """(used + trade max risk) / available, after the trade; None without a budget."""
        return utilisation(self.used + trade_max_risk, self.available)

    def warning_level(self, trade_max_risk: Decimal = ZERO) -> WarningLevel:
        """The template's warning level reached after the trade (exact comparison)."""
        return warning_level(self.account.template, self.used + trade_max_risk, self.available)

    def assessment(
        self, trade_max_risk: Decimal, *, dry_run_buying_power_change: Decimal | None = None
    ) -> RiskAssessment:
        """Every figure of the budget as seen for a trade of ``trade_max_risk``."""
        _finite("trade_max_risk", trade_max_risk, non_negative=True)
        return RiskAssessment(
            template=self.account.template,
            base_tolerance=self.base_tolerance,
            stressed=self.stressed,
            tolerance=self.tolerance,
            buying_power=self.account.buying_power,
            tradeable_capital=self.tradeable_capital,
            available_risk=self.available,
            used_risk=self.used,
            remaining_risk=self.remaining,
            trade_max_risk=trade_max_risk,
            utilisation=self.utilisation(trade_max_risk),
            warning_level=self.warning_level(trade_max_risk),
            dry_run_buying_power_change=dry_run_buying_power_change,
        )


def budget_view(
    account: AccountRisk,
    *,
    reserved_risk: Decimal,
    open_positions: int,
    as_of: datetime,
    stressed_underlyings: Iterable[str] = (),
) -> RiskBudgetView:
    """The risk-budget query's answer: the unstressed budget now, without a new trade.

    Trades on a stressed underlying get the stressed tolerance; the view lists those
    underlyings rather than a second set of figures.
    """
    budget = Budget(account, stressed=False, reserved_risk=reserved_risk)
    return RiskBudgetView(
        template=account.template,
        base_tolerance=budget.base_tolerance,
        buying_power=account.buying_power,
        tradeable_capital=budget.tradeable_capital,
        available_risk=budget.available,
        open_positions_max_risk=account.open_positions_max_risk,
        reserved_risk=reserved_risk,
        used_risk=budget.used,
        remaining_risk=budget.remaining,
        utilisation=budget.utilisation(),
        warning_level=budget.warning_level(),
        stressed_underlyings=tuple(sorted(set(stressed_underlyings))),
        open_positions=open_positions,
        as_of=as_of,
    )
