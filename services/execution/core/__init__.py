"""Execution's pure core: orders, exits, entry credits, broker reports and retries.

No I/O, no clock reads: inputs in, decisions out. The shell (`services.execution.service`
and the collaborators `services.execution.bootstrap` builds) wires NATS, the broker
adapter and the clock to these functions.
"""

from services.execution.core.ids import position_id_for, profit_target_order_id
from services.execution.core.orders import (
    InvalidOrder,
    OrderSpec,
    check_limit_order,
    exit_order,
    opening_order,
    replacement_order,
)
from services.execution.core.positions import (
    ExitPlan,
    PositionPlan,
    entry_credit,
    plan_position,
    profit_target_debit,
    profit_targets,
)
from services.execution.core.reports import (
    Accepted,
    Cancelled,
    Expired,
    Fact,
    Fills,
    Rejected,
    Replaced,
    lifecycle_facts,
)
from services.execution.core.retry import RetryPolicy, Step, StepAction

__all__ = [
    "Accepted",
    "Cancelled",
    "ExitPlan",
    "Expired",
    "Fact",
    "Fills",
    "InvalidOrder",
    "OrderSpec",
    "PositionPlan",
    "Rejected",
    "Replaced",
    "RetryPolicy",
    "Step",
    "StepAction",
    "check_limit_order",
    "entry_credit",
    "exit_order",
    "lifecycle_facts",
    "opening_order",
    "plan_position",
    "position_id_for",
    "profit_target_debit",
    "profit_target_order_id",
    "profit_targets",
    "replacement_order",
]
