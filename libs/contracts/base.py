"""The base model every contract shares, and the constrained types they are built from."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class ContractModel(BaseModel):
    """Frozen, strict-about-extras base for every event, command and reply.

    ``extra="forbid"`` makes a misspelt field a validation error naming that field
    instead of a value silently dropped.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        ser_json_inf_nan="strings",
    )


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC preferred)")
    return value


#: A timezone-aware instant. Naive datetimes are refused: business time is compared
#: across New York (exchange) and UTC (log) and a naive value would be ambiguous.
AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]

#: Money and prices: exact decimals, never NaN or infinity.
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
#: A money amount that cannot be negative (credits per share, buying power).
NonNegativeMoney = Annotated[Decimal, Field(allow_inf_nan=False, ge=0)]
#: A ratio such as 0.40 (profit target) or 0.50 (risk tolerance).
Ratio = Annotated[Decimal, Field(allow_inf_nan=False, ge=0, le=10)]
#: Broker account number (TastyTrade style, e.g. ``5WT00001``).
AccountId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
#: Underlying ticker such as ``QQQ``.
Ticker = Annotated[str, Field(min_length=1, max_length=6, pattern=r"^[A-Z][A-Z0-9.]{0,5}$")]
