"""The strategy service's pure decision core (DOMAIN.md 1-3).

Inputs in, a ``Decision`` out: no I/O, no clock reads. ``decide`` runs the checks in
the order DOMAIN.md 2.6 fixes: position limit, expiration and strikes, overlap, pricing.
"""

from __future__ import annotations

from services.strategy.core.decide import (
    DEFAULT_RISK_FREE_RATE,
    POSITION_LIMIT,
    Decision,
    Proposal,
    decide,
)
from services.strategy.core.snapshot import Snapshot, SnapshotError, load_snapshot

__all__ = [
    "DEFAULT_RISK_FREE_RATE",
    "POSITION_LIMIT",
    "Decision",
    "Proposal",
    "Snapshot",
    "SnapshotError",
    "decide",
    "load_snapshot",
]
