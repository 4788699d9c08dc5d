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

__all__ = [
    "BASE_TOLERANCE",
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
    "budget_view",
    "check",
    "parse_template",
    "reserve",
    "risk_json",
    "severity",
    "tolerance",
    "utilisation",
    "warning_gate",
    "warning_level",
]
