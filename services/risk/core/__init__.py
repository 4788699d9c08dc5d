"""The risk service's pure decision core (DOMAIN.md 4).

Plain values in, verdicts out: no I/O, no clock reads, no events folded here (the
service feeds it the projection's totals). `Budget` holds the figures, `check` judges a
suggestion, `reserve` an approval (with `warning_gate` and the broker's `DryRunVerdict`),
`risk_json` renders the CLI's ``"risk"`` object. Edge decisions are in ``budget.py``.
"""

from __future__ import annotations

from services.risk.core.budget import (
    BASE_TOLERANCE,
    STRESS_FACTOR,
    TOLERANCE_CAP,
    WARNING_THRESHOLDS,
    AccountRisk,
    Budget,
    budget_view,
    parse_template,
    severity,
    tolerance,
    utilisation,
    warning_level,
)
from services.risk.core.check import (
    Approval,
    ApprovalLike,
    DryRunLike,
    DryRunVerdict,
    Failure,
    Reservation,
    RiskCheck,
    check,
    reserve,
    warning_gate,
)
from services.risk.core.render import risk_json
from services.risk.core.trident import (
    MULTIPLIER,
    TridentRisk,
    order_unit,
    total_credit_from_order_price,
    trident_risk,
    trident_risk_at_order_price,
)

__all__ = [
    "BASE_TOLERANCE",
    "MULTIPLIER",
    "STRESS_FACTOR",
    "TOLERANCE_CAP",
    "WARNING_THRESHOLDS",
    "AccountRisk",
    "Approval",
    "ApprovalLike",
    "Budget",
    "DryRunLike",
    "DryRunVerdict",
    "Failure",
    "Reservation",
    "RiskCheck",
    "TridentRisk",
    "budget_view",
    "check",
    "order_unit",
    "parse_template",
    "reserve",
    "risk_json",
    "severity",
    "tolerance",
    "total_credit_from_order_price",
    "trident_risk",
    "trident_risk_at_order_price",
    "utilisation",
    "warning_gate",
    "warning_level",
]
