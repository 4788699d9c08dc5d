"""NO_CREDIT: no trade when the total mid credit is not positive (the owner's rule)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from libs.contracts.strategy import SkipReason
from services.strategy.core import Snapshot, decide
from tests.unit.strategy.builders import FEB_20, snapshot_dict


def flat_rows(bid: str, ask: str) -> list[dict[str, Any]]:
    """Every option quoted the same: every spread's mid credit is zero."""
    quote = {"bid": bid, "ask": ask}
    return [{"strike": str(s), "put": quote, "call": quote} for s in range(580, 606)]


def test_a_zero_total_mid_credit_is_no_trade_as_the_last_check() -> None:
    snapshot = Snapshot.model_validate(snapshot_dict(chain={FEB_20: flat_rows("1.00", "1.10")}))
    decision = decide(snapshot)
    assert decision.reason_code is SkipReason.NO_CREDIT
    assert decision.proposal is None
    assert decision.expiration == FEB_20
    assert decision.trail[-2] == "no conflict with open spreads"
    assert "total mid credit 0" in decision.trail[-1]
    assert "not positive" in decision.trail[-1]


def test_a_positive_credit_still_suggests() -> None:
    decision = decide(Snapshot.model_validate(snapshot_dict()))
    assert decision.suggests
    assert decision.proposal is not None
    assert decision.proposal.total_credit.mid > Decimal(0)
