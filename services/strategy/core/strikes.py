"""Strike, width and expiration selection (DOMAIN.md 2, system-controlled)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from services.strategy.core.snapshot import ChainExpiration

NEW_YORK = ZoneInfo("America/New_York")
MIN_DTE = 30
MAX_DTE = 50
TARGET_DTE = 45

#: (tradeable capital lower bound, width), highest first (DOMAIN.md 2.4).
WIDTH_TIERS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(75_000), Decimal(9)),
    (Decimal(50_000), Decimal(7)),
    (Decimal(25_000), Decimal(5)),
    (Decimal(0), Decimal(3)),
)


def base_strike(price: Decimal) -> Decimal:
    """K = 2 x round(price / 2), ties to the even integer (Python's ``round``)."""
    return 2 * (price / 2).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)


def spread_width(tradeable_capital: Decimal) -> Decimal:
    """W from tradeable capital: <25k -> 3, <50k -> 5, <75k -> 7, else 9."""
    for floor, width in WIDTH_TIERS:
        if tradeable_capital >= floor:
            return width
    return WIDTH_TIERS[-1][1]


def new_york_date(as_of: datetime) -> date:
    """The calendar date in New York at ``as_of`` (an aware instant)."""
    return as_of.astimezone(NEW_YORK).date()


def days_to_expiration(today: date, expiration: date) -> int:
    """Calendar days from ``today`` (New York) to ``expiration``."""
    return (expiration - today).days


def candidate_expirations(expirations: Iterable[date], today: date) -> list[date]:
    """Expirations with 30 <= DTE <= 50, nearest to 45 first, ties to the later date."""
    inside = [e for e in expirations if MIN_DTE <= days_to_expiration(today, e) <= MAX_DTE]
    return sorted(
        inside,
        key=lambda e: (abs(days_to_expiration(today, e) - TARGET_DTE), -e.toordinal()),
    )


@dataclass(frozen=True, slots=True)
class StrikeChoice:
    """The strikes that work for one expiration."""

    expiration: date
    short_strike: Decimal
    put_long_strike: Decimal
    call_long_strike: Decimal | None


def short_strike_for(chain: ChainExpiration, base: Decimal) -> Decimal | None:
    """K' = K if listed, else the smallest listed strike above K; None if none is."""
    listed = sorted(row.strike for row in chain.strikes)
    return next((s for s in listed if s >= base), None)


def choose_strikes(
    chain: ChainExpiration, base: Decimal, width: Decimal, include_calls: bool
) -> StrikeChoice | str:
    """The strikes for this expiration, or why it does not work (DOMAIN.md 2.3).

    Every leg's strike must be listed and the leg's option two-sided (bid and ask > 0).
    """
    short = short_strike_for(chain, base)
    if short is None:
        return f"no strike listed at or above {base}"
    needed: list[tuple[Decimal, str]] = [(short, "put"), (short - width, "put")]
    if include_calls:
        needed += [(short, "call"), (short + width, "call")]
    problems: list[str] = []
    for strike, side in needed:
        row = chain.row(strike)
        quote = None if row is None else (row.put if side == "put" else row.call)
        if row is None:
            problems.append(f"{strike} not listed")
        elif quote is None or not quote.two_sided:
            problems.append(f"{strike} {side} not two-sided")
    if problems:
        return f"short {short}: " + ", ".join(problems)
    return StrikeChoice(
        expiration=chain.expiration,
        short_strike=short,
        put_long_strike=short - width,
        call_long_strike=short + width if include_calls else None,
    )
