"""What several benchmarks share: the machine they ran on, and synthetic quotes."""

from __future__ import annotations

import os
import platform
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

from libs.contracts.market import QuoteReceived

#: Bid-ask spread of a synthetic quote.
SPREAD = Decimal("0.05")


def machine() -> dict[str, Any]:
    """CPUs this process may use, the Python version and the 1-minute load now."""
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_1m": os.getloadavg()[0],
    }


def quote(symbol: str, bid: Decimal, now: datetime) -> QuoteReceived:
    """A market-data quote as the market-data service publishes it, quoted ``now``."""
    return QuoteReceived(
        occurred_at=now,
        producer="market_data",
        correlation_id=uuid4(),
        symbol=symbol,
        bid=bid,
        ask=bid + SPREAD,
        quoted_at=now,
    )
