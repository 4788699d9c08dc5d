"""Snapshot builders for the strategy core's tests: plain dicts, as the JSON would be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from vollib.black_scholes import black_scholes

from services.strategy.core import Snapshot

AS_OF = "2026-01-05T11:00:00-05:00"
TODAY = date(2026, 1, 5)
FEB_20 = date(2026, 2, 20)  # DTE 46
CENT = Decimal("0.01")

#: 19 closes that keep 591 well inside the bands.
CALM_CLOSES: tuple[str, ...] = tuple(
    str(Decimal(591) + Decimal(d)) for d in (-6, 4, -3, 5, -5, 2, -4, 6, -2, 3) + (-1, 1) * 4 + (0,)
)


def quote(strike: Decimal, price: Decimal, dte: int, flag: str) -> dict[str, str]:
    """A two-sided quote around the Black-Scholes value at 20 % volatility."""
    value = float(black_scholes(flag, float(price), float(strike), dte / 365, 0.045, 0.2))
    mid = Decimal(repr(max(value, 0.05))).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return {"bid": str(max(mid - Decimal("0.05"), CENT)), "ask": str(mid + Decimal("0.05"))}


def chain_rows(
    strikes: Iterable[Decimal | int | str],
    price: Decimal,
    expiration: date,
    *,
    missing: Mapping[str, set[str]] | None = None,
) -> list[dict[str, Any]]:
    """Rows for ``strikes``; ``missing`` maps 'put'/'call' to strikes quoted as null."""
    dte = (expiration - TODAY).days
    rows = []
    for raw in strikes:
        strike = Decimal(str(raw))
        row: dict[str, Any] = {"strike": str(strike)}
        for side, flag in (("put", "p"), ("call", "c")):
            absent = missing is not None and str(strike) in missing.get(side, set())
            row[side] = None if absent else quote(strike, price, dte, flag)
        rows.append(row)
    return rows


def snapshot_dict(
    *,
    price: str = "591.00",
    closes: Sequence[str] = CALM_CLOSES,
    chain: Mapping[date, list[dict[str, Any]]] | None = None,
    buying_power: str = "20000",
    positions: Sequence[Mapping[str, Any]] = (),
    underlying: str = "QQQ",
    as_of: str = AS_OF,
) -> dict[str, Any]:
    """A valid snapshot; by default QQQ at 591 with strikes 580-605 on 2026-02-20."""
    if chain is None:
        chain = {FEB_20: chain_rows(range(580, 606), Decimal(price), FEB_20)}
    return {
        "as_of": as_of,
        "underlying": underlying,
        "price": price,
        "daily_closes": list(closes),
        "chain": [{"expiration": exp.isoformat(), "strikes": rows} for exp, rows in chain.items()],
        "account": {"buying_power": buying_power, "positions": list(positions)},
        "settings": {"risk_template": "conservative"},
    }


def position(
    expiration: date = FEB_20,
    spreads: Sequence[tuple[str, str, str]] = (),
    *,
    underlying: str = "QQQ",
    max_risk: str = "600",
) -> dict[str, Any]:
    """An open position; spreads as (type, short, long) with quantity 1."""
    return {
        "underlying": underlying,
        "expiration": expiration.isoformat(),
        "max_risk": max_risk,
        "spreads": [
            {"type": t, "short": short, "long": long, "quantity": 1} for t, short, long in spreads
        ],
    }


def build(**kwargs: Any) -> Snapshot:
    """A validated ``Snapshot`` from ``snapshot_dict(**kwargs)``."""
    return Snapshot.model_validate(snapshot_dict(**kwargs))
