"""Option chains: expirations, the $1 strike grid and OCC symbols."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from services.simulator import clock, market

#: Weekly expirations are listed this many days ahead (the brief asks for >= 70).
WEEKLY_HORIZON_DAYS = 77
#: Monthly (third-Friday) expirations are listed this many months ahead.
MONTHLY_HORIZON_MONTHS = 4
#: Strikes span this fraction either side of the previous close.
STRIKE_SPAN = Decimal("0.12")

_OCC = re.compile(r"^([A-Z]{1,6}) {0,5}(\d{6})([CP])(\d{8})$")


@dataclass(frozen=True)
class Expiration:
    """One listed expiration."""

    day: date
    #: "Regular" for the monthly third Friday, "Weekly" otherwise (TastyTrade's names).
    kind: str


@dataclass(frozen=True)
class OptionSymbol:
    """A parsed OCC option symbol."""

    root: str
    expiration: date
    is_call: bool
    strike: Decimal

    @property
    def occ(self) -> str:
        """The OCC form: root padded to 6, YYMMDD, C/P, strike x 1000 in 8 digits."""
        return occ_symbol(self.root, self.expiration, self.is_call, self.strike)

    @property
    def streamer(self) -> str:
        """The dxfeed form, as ``Option.occ_to_streamer_symbol`` builds it."""
        return streamer_symbol(self.root, self.expiration, self.is_call, self.strike)


def occ_symbol(root: str, expiration: date, is_call: bool, strike: Decimal) -> str:
    """OCC 2010 symbol, e.g. ``SPY   250620C00500000``."""
    millis = int(strike * 1000)
    return f"{root:<6}{expiration:%y%m%d}{'C' if is_call else 'P'}{millis:08d}"


def streamer_symbol(root: str, expiration: date, is_call: bool, strike: Decimal) -> str:
    """dxfeed symbol, e.g. ``.SPY250620C500`` or ``.SPY250620P502.5``."""
    if strike % 1 == 0:
        text = f"{strike:.0f}"
    else:
        text = f"{strike:.2f}"
        if text.endswith("0"):
            text = text[:-1]
    return f".{root}{expiration:%y%m%d}{'C' if is_call else 'P'}{text}"


def parse_occ(symbol: str) -> OptionSymbol | None:
    """Parse an OCC symbol; None when it is not one."""
    match = _OCC.match(symbol)
    if match is None:
        return None
    root, ymd, kind, millis = match.groups()
    if len(symbol) != 21:
        return None
    try:
        expiration = datetime.strptime(ymd, "%y%m%d").date()  # noqa: DTZ007 - a date only
        strike = Decimal(int(millis)) / 1000
    except (ValueError, InvalidOperation):
        return None
    if strike <= 0:
        return None
    return OptionSymbol(root=root, expiration=expiration, is_call=kind == "C", strike=strike)


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month."""
    first = date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + timedelta(days=offset + 14)


def _shift_to_session(day: date) -> date:
    """An expiration on an exchange holiday moves to the session before it."""
    if clock.is_session(day):
        return day
    return clock.previous_session_before(day)


def expirations(at: datetime) -> list[Expiration]:
    """Expirations listed at ``at``: weeklies to >= 70 days and four monthlies, not expired."""
    today = clock.ny_date(at)
    monthlies: set[date] = set()
    year, month = today.year, today.month
    for _ in range(MONTHLY_HORIZON_MONTHS + 1):
        monthlies.add(_shift_to_session(third_friday(year, month)))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    days = {d: "Regular" for d in monthlies}
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    while (friday - today).days <= WEEKLY_HORIZON_DAYS:
        day = _shift_to_session(friday)
        days.setdefault(day, "Weekly")
        friday += timedelta(days=7)
    return [
        Expiration(day, kind)
        for day, kind in sorted(days.items())
        if market.expiry_instant(day) > at
    ]


def is_listed_expiration(day: date, at: datetime) -> bool:
    """Whether ``day`` is a live expiration at ``at``."""
    return any(e.day == day for e in expirations(at))


def strike_grid(reference: Decimal) -> list[Decimal]:
    """$1 strikes from 12 % below to 12 % above ``reference``."""
    low = int((reference * (1 - STRIKE_SPAN)).to_integral_value())
    high = int((reference * (1 + STRIKE_SPAN)).to_integral_value())
    return [Decimal(k) for k in range(low, high + 1)]


def reference_price(seed: int, symbol: str, at: datetime) -> Decimal:
    """What the grid is centred on: the last completed close, so it is stable all day."""
    return market.model_close(seed, symbol, clock.last_completed_session(at))


def days_to_expiration(expiration: date, at: datetime) -> int:
    """Calendar days from today in New York to the expiration."""
    return (expiration - clock.ny_date(at)).days
