"""Which part of an option chain a snapshot covers: DTE range and strikes around the mid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from libs.broker.models import OptionChain
from libs.contracts.symbols import OccSymbol


@dataclass(frozen=True)
class WindowStrike:
    """One listed strike inside the window and its two option symbols."""

    strike: Decimal
    put: OccSymbol
    call: OccSymbol


@dataclass(frozen=True)
class WindowExpiration:
    """One expiration inside the DTE range, strikes ascending."""

    expiration: date
    dte: int
    strikes: tuple[WindowStrike, ...]


def dte(expiration: date, today: date) -> int:
    """Calendar days from ``today`` (the New York date of business time) to ``expiration``."""
    return (expiration - today).days


def select_window(
    chain: OptionChain,
    *,
    today: date,
    mid: Decimal,
    min_dte: int,
    max_dte: int,
    strike_range: Decimal,
) -> tuple[WindowExpiration, ...]:
    """Expirations with ``min_dte <= DTE <= max_dte`` and strikes in ``mid +/- strike_range``.

    DTE is computed here from ``today``, not taken from the broker's own count, so it
    follows the injected clock (DOMAIN.md 8). Expirations and strikes come out ascending.
    """
    low, high = mid - strike_range, mid + strike_range
    selected: list[WindowExpiration] = []
    for expiration in sorted(chain.expirations, key=lambda e: e.expiration_date):
        days = dte(expiration.expiration_date, today)
        if not min_dte <= days <= max_dte:
            continue
        strikes = tuple(
            WindowStrike(strike=s.strike, put=s.put, call=s.call)
            for s in sorted(expiration.strikes, key=lambda s: s.strike)
            if low <= s.strike <= high
        )
        selected.append(WindowExpiration(expiration.expiration_date, days, strikes))
    return tuple(selected)


def window_symbols(window: tuple[WindowExpiration, ...]) -> list[str]:
    """Every option symbol of the window (puts and calls), in window order."""
    symbols: list[str] = []
    for expiration in window:
        for strike in expiration.strikes:
            symbols.append(strike.put)
            symbols.append(strike.call)
    return symbols
