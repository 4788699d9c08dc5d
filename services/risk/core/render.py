"""The ``"risk"`` object of ``senex suggest --json`` (Decimal values as strings).

Computed by the same core as the service, from what a snapshot holds: buying power, the
open positions' max risk, the template and the market. A snapshot has no reservations,
so used = the positions' max risk and remaining = available - used.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from libs.contracts.risk import RiskTemplate
from services.risk.core.budget import AccountRisk, Budget, parse_template
from services.risk.core.check import check


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def risk_json(
    *,
    buying_power: Decimal,
    positions_max_risk: Iterable[Decimal],
    template: RiskTemplate | str,
    stressed: bool,
    trade_max_risk: Decimal | None,
) -> dict[str, Any]:
    """{"tradeable_capital", "tolerance", "available", "used", "remaining", "utilisation",
    "passed", "warning"}.

    With a trade: utilisation is after it, ``passed`` is the budget check (max risk <=
    remaining, and a positive budget) and ``warning`` the level it reaches
    (``"NONE"`` / ``"WARNING"`` / ``"CRITICAL"``). Without one (no suggestion),
    utilisation and warning describe the budget as it is and ``passed`` is null.
    ``utilisation`` is null when available risk is not above zero.
    """
    account = AccountRisk.of_positions(parse_template(template), buying_power, positions_max_risk)
    budget = Budget(account, stressed=stressed)
    if trade_max_risk is None:
        utilisation, warning, passed = budget.utilisation(), budget.warning_level(), None
    else:
        verdict = check(budget, trade_max_risk)
        a = verdict.assessment
        utilisation, warning, passed = a.utilisation, a.warning_level, verdict.passed
    return {
        "tradeable_capital": str(budget.tradeable_capital),
        "tolerance": str(budget.tolerance),
        "available": str(budget.available),
        "used": str(budget.used),
        "remaining": str(budget.remaining),
        "utilisation": _str(utilisation),
        "passed": passed,
        "warning": warning.value,
    }
