"""The base model every contract shares, and the constrained types they are built from."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class ContractModel(BaseModel):
    """Frozen, strict-about-extras base for every event, command and reply.

    ``extra="forbid"`` makes a misspelt field a validation error naming that field
    instead of a value silently dropped. Attribute docstrings become field descriptions,
    so the published JSON Schemas explain each field.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        ser_json_inf_nan="strings",
        use_attribute_docstrings=True,
    )


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC preferred)")
    return value


#: A timezone-aware instant. Naive datetimes are refused: business time is compared
#: across New York (exchange) and UTC (log) and a naive value would be ambiguous.
AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]

#: Money and prices: exact decimals, never NaN or infinity. Serialized as strings
#: exactly as held (``Decimal("1.10")`` -> ``"1.10"``).
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
#: A money amount that cannot be negative (credits per share, buying power).
NonNegativeMoney = Annotated[Decimal, Field(allow_inf_nan=False, ge=0)]
#: A money amount that must be above zero (a limit credit, a user's custom credit).
PositiveMoney = Annotated[Decimal, Field(allow_inf_nan=False, gt=0)]
#: A finite decimal that is not money (Greeks, band multipliers).
FiniteDecimal = Annotated[Decimal, Field(allow_inf_nan=False)]
#: A finite decimal that cannot be negative (utilisation, which can exceed 1).
NonNegativeDecimal = Annotated[Decimal, Field(allow_inf_nan=False, ge=0)]
#: A ratio such as 0.40 (profit target) or 0.50 (risk tolerance).
Ratio = Annotated[Decimal, Field(allow_inf_nan=False, ge=0, le=10)]
#: A percentage from 0 to 100 (IV rank).
Percent = Annotated[Decimal, Field(allow_inf_nan=False, ge=0, le=100)]
#: Option contracts (or spreads) in an order or position: whole and positive.
Contracts = Annotated[int, Field(ge=1, le=10_000)]
#: Broker account number (TastyTrade style, e.g. ``5WT00001``). Safe as a NATS token.
AccountId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
#: The gateway's identifier of a user.
UserId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@+-]+$")]
#: Pattern of an underlying ticker.
TICKER_PATTERN = r"^[A-Z][A-Z0-9.]{0,5}$"
#: Underlying ticker such as ``QQQ``.
Ticker = Annotated[str, Field(min_length=1, max_length=6, pattern=TICKER_PATTERN)]
#: The name of the service that produced an event (``strategy``, ``execution``...).
ServiceName = Annotated[str, Field(min_length=1, max_length=64)]


_E = TypeVar("_E", bound=StrEnum)


def _sorted_unique(values: tuple[_E, ...]) -> tuple[_E, ...]:
    return tuple(sorted(set(values)))


#: A set of enum members held as a sorted tuple, so it serializes deterministically.
EnumSet = Annotated[tuple[_E, ...], AfterValidator(_sorted_unique)]


class Underlying(StrEnum):
    """The underlyings the system trades (DOMAIN.md 2.7); a user enables a subset."""

    QQQ = "QQQ"
    SPY = "SPY"
