"""OCC option symbols: ``QQQ   251219P00592000``.

Layout (21 characters): root left-justified and space-padded to 6, expiration
``YYMMDD``, ``C`` or ``P``, strike x 1000 as 8 digits. ``OccSymbol`` is a ``str``
(it compares, hashes and serializes as the plain symbol) that is only ever built
valid, and reads its parts back as typed values.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, GetCoreSchemaHandler, WithJsonSchema
from pydantic_core import core_schema

from libs.contracts.base import TICKER_PATTERN

#: Syntactic shape of an OCC symbol; ``parse_occ`` also checks the date and strike.
OCC_PATTERN = r"^[A-Z0-9]{1,6} {0,5}[0-9]{6}[CP][0-9]{8}$"
_OCC_RE = re.compile(OCC_PATTERN)
_ROOT_RE = re.compile(r"^[A-Z0-9]{1,6}$")
_STRIKE_SCALE = Decimal(1000)
_MAX_STRIKE_UNITS = 99_999_999


class OptionType(StrEnum):
    """Put or call; ``occ_code`` is the letter in the symbol."""

    CALL = "CALL"
    PUT = "PUT"

    @property
    def occ_code(self) -> str:
        """``C`` or ``P``."""
        return self.value[0]

    @classmethod
    def from_occ_code(cls, code: str) -> OptionType:
        """The type for ``C`` or ``P``."""
        if code == "C":
            return cls.CALL
        if code == "P":
            return cls.PUT
        raise InvalidOccSymbol(f"option type must be C or P, got {code!r}")


class InvalidOccSymbol(ValueError):
    """A string is not a valid OCC symbol, or parts cannot form one."""


class OptionContract(NamedTuple):
    """The parts of an OCC symbol."""

    root: str
    expiration: date
    option_type: OptionType
    strike: Decimal


@functools.lru_cache(maxsize=65_536)
def parse_occ(symbol: str) -> OptionContract:
    """Split an OCC symbol into its parts; raises ``InvalidOccSymbol``.

    Cached: the same few hundred symbols recur in every quote, leg and fill, and the
    result is immutable (errors are not cached).
    """
    if len(symbol) != 21 or not _OCC_RE.match(symbol):
        raise InvalidOccSymbol(
            f"{symbol!r} is not an OCC symbol (root padded to 6, YYMMDD, C/P, 8-digit strike)"
        )
    root = symbol[:6].rstrip(" ")
    if not _ROOT_RE.match(root):
        raise InvalidOccSymbol(f"{symbol!r}: root must be left-justified")
    yymmdd = symbol[6:12]
    try:
        expiration = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError:
        raise InvalidOccSymbol(f"{symbol!r}: {yymmdd} is not a date") from None
    units = int(symbol[13:])
    if units == 0:
        raise InvalidOccSymbol(f"{symbol!r}: strike must be above zero")
    # Exact division keeps the shortest exponent: 592000 -> 592, 502500 -> 502.5.
    strike = Decimal(units) / _STRIKE_SCALE
    return OptionContract(root, expiration, OptionType.from_occ_code(symbol[12]), strike)


def format_occ(root: str, expiration: date, option_type: OptionType, strike: Decimal) -> OccSymbol:
    """The OCC symbol for these parts; raises ``InvalidOccSymbol``."""
    if not _ROOT_RE.match(root):
        raise InvalidOccSymbol(f"root {root!r} must be 1-6 upper-case letters or digits")
    if not 2000 <= expiration.year <= 2099:
        raise InvalidOccSymbol(f"expiration {expiration} outside 2000-2099")
    try:
        scaled = Decimal(strike) * _STRIKE_SCALE
        exact = scaled == scaled.to_integral_value()
    except InvalidOperation:
        raise InvalidOccSymbol(f"strike {strike!r} is not a finite number") from None
    if not exact or not 0 < scaled <= _MAX_STRIKE_UNITS:
        raise InvalidOccSymbol(
            f"strike {strike} must be above 0, below 100000, with at most 3 decimals"
        )
    text = f"{root:<6}{expiration:%y%m%d}{option_type.occ_code}{int(scaled):08d}"
    return OccSymbol(text)


class OccSymbol(str):
    """A validated OCC option symbol; behaves as the plain ``str``."""

    __slots__ = ()

    def __new__(cls, value: str) -> OccSymbol:
        if type(value) is cls:
            return value
        parse_occ(value)
        return super().__new__(cls, value)

    @classmethod
    def build(
        cls, root: str, expiration: date, option_type: OptionType, strike: Decimal
    ) -> OccSymbol:
        """The symbol for these parts (see ``format_occ``)."""
        return format_occ(root, expiration, option_type, strike)

    @property
    def contract(self) -> OptionContract:
        """All parts at once."""
        return parse_occ(self)

    @property
    def root(self) -> str:
        """The option root, e.g. ``QQQ``."""
        return self[:6].rstrip(" ")

    @property
    def expiration(self) -> date:
        """The expiration date."""
        return parse_occ(self).expiration

    @property
    def option_type(self) -> OptionType:
        """CALL or PUT."""
        return OptionType.from_occ_code(self[12])

    @property
    def strike(self) -> Decimal:
        """The strike price."""
        return Decimal(int(self[13:])) / _STRIKE_SCALE

    @property
    def streamer_symbol(self) -> str:
        """The DXLink symbol, e.g. ``.QQQ251219P592`` or ``.SPY250620P502.5``."""
        return f".{self.root}{self[6:12]}{self[12]}{self.strike.normalize():f}"

    @property
    def compact(self) -> str:
        """The symbol without its padding, e.g. ``QQQ251219P00592000``.

        Unambiguous: the last 15 characters have fixed width, so the root is the rest.
        """
        return self.replace(" ", "")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(pattern=OCC_PATTERN, min_length=21, max_length=21),
            serialization=core_schema.to_string_ser_schema(),
        )


_TICKER_RE = re.compile(TICKER_PATTERN)


def _market_symbol(value: str) -> str:
    if len(value) == 21:
        return OccSymbol(value)
    if _TICKER_RE.match(value):
        return value
    raise ValueError(f"{value!r} is neither a ticker nor an OCC option symbol")


#: What a market-wide event is about: an underlying ticker (``QQQ``) or an option's OCC
#: symbol (held as ``OccSymbol``). One validator, so errors name just the field.
MarketSymbol = Annotated[
    str,
    AfterValidator(_market_symbol),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": TICKER_PATTERN},
                {"type": "string", "pattern": OCC_PATTERN, "minLength": 21, "maxLength": 21},
            ]
        }
    ),
]
