"""The market and account snapshot a decision is made from, validated at the boundary.

Decimal values arrive as JSON strings (numbers are accepted too). Models are frozen and
refuse unknown fields; ``load_snapshot`` turns any problem into one ``SnapshotError``
naming the first bad field, e.g. ``chain.0.strikes.2.put.bid``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from libs.contracts.base import AwareDatetime, Underlying

Price = Annotated[Decimal, Field(allow_inf_nan=False, ge=0)]
PositivePrice = Annotated[Decimal, Field(allow_inf_nan=False, gt=0)]

#: Daily closes that, with the current price, make the 20-period Bollinger window.
CLOSES_IN_WINDOW = 19


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OptionQuote(_Model):
    """Best bid and ask of one option."""

    bid: Price
    ask: Price

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2, exact."""
        return (self.bid + self.ask) / 2

    @property
    def two_sided(self) -> bool:
        """Both a bid and an ask above zero."""
        return self.bid > 0 and self.ask > 0


class StrikeQuotes(_Model):
    """One listed strike; a side is null when the broker gave no quote for it."""

    strike: PositivePrice
    put: OptionQuote | None = None
    call: OptionQuote | None = None


class ChainExpiration(_Model):
    """The listed strikes of one expiration."""

    expiration: date
    strikes: tuple[StrikeQuotes, ...]

    @model_validator(mode="after")
    def _unique_strikes(self) -> ChainExpiration:
        seen = [row.strike for row in self.strikes]
        if len(set(seen)) != len(seen):
            raise ValueError("strikes must be listed once each")
        return self

    def row(self, strike: Decimal) -> StrikeQuotes | None:
        """The row of ``strike``, or None when it is not listed."""
        return next((r for r in self.strikes if r.strike == strike), None)


class OpenSpread(_Model):
    """One credit spread of an open app-managed position."""

    type: Literal["put", "call"]
    short: PositivePrice
    long: PositivePrice
    quantity: int = Field(ge=1)


class OpenPosition(_Model):
    """An open app-managed position."""

    underlying: Underlying
    expiration: date
    max_risk: Price
    spreads: tuple[OpenSpread, ...] = ()


class Account(_Model):
    """Buying power and the open app-managed positions."""

    buying_power: Price
    positions: tuple[OpenPosition, ...] = ()

    @property
    def tradeable_capital(self) -> Decimal:
        """Buying power + max risk of open app-managed positions (DOMAIN.md 4)."""
        return self.buying_power + sum((p.max_risk for p in self.positions), Decimal(0))


class StrategySettings(_Model):
    """The user's settings the snapshot carries."""

    risk_template: Literal["conservative", "moderate", "aggressive"] = "conservative"


class Snapshot(_Model):
    """Everything one decision needs, as of ``as_of``."""

    as_of: AwareDatetime
    underlying: Underlying
    price: PositivePrice
    """The underlying's quote mid, used for the base strike and the bands."""
    daily_closes: tuple[PositivePrice, ...] = Field(
        min_length=CLOSES_IN_WINDOW, max_length=CLOSES_IN_WINDOW
    )
    """The last 19 daily closes, oldest first."""
    chain: tuple[ChainExpiration, ...]
    account: Account
    settings: StrategySettings = StrategySettings()
    risk_free_rate: Annotated[Decimal, Field(allow_inf_nan=False, ge=0, lt=1)] | None = None
    """Annual rate as a fraction (0.045); null -> the core's default."""

    @model_validator(mode="after")
    def _unique_expirations(self) -> Snapshot:
        seen = [c.expiration for c in self.chain]
        if len(set(seen)) != len(seen):
            raise ValueError("chain: expirations must be listed once each")
        return self


class SnapshotError(ValueError):
    """A snapshot is malformed; ``field`` names the first bad field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def load_snapshot(data: str | bytes) -> Snapshot:
    """Parse and validate a JSON snapshot; raises ``SnapshotError``."""
    try:
        return Snapshot.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in first["loc"]) or "snapshot"
        if first["type"] == "json_invalid":
            raise SnapshotError("snapshot", f"not valid JSON ({first['msg']})") from None
        raise SnapshotError(loc, first["msg"]) from None
