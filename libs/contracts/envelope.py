"""The envelope every event carries, and the base classes of all events.

Events are flat on the wire: the envelope fields sit beside the event's own fields,
``type`` naming the model. ``ENVELOPE_FIELDS`` tells them apart, which is what the
event log uses to split a row into columns/metadata and ``payload``.

Concrete events derive from ``AccountEvent`` (``account_id`` required) or
``MarketEvent`` (market-wide: ``account_id`` must be null, ``symbol`` required), never
from ``Event`` directly.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict
from uuid import UUID

import uuid_utils.compat as uuid_compat
from pydantic import Field, field_validator

from libs.contracts.base import AccountId, AwareDatetime, ContractModel, ServiceName
from libs.contracts.symbols import MarketSymbol

#: Field names that belong to the envelope rather than to the event's own payload.
ENVELOPE_FIELDS: frozenset[str] = frozenset(
    {
        "event_id",
        "type",
        "schema_version",
        "occurred_at",
        "producer",
        "account_id",
        "correlation_id",
        "causation_id",
    }
)


def new_event_id() -> UUID:
    """A fresh UUIDv7: time-ordered, so ids sort roughly by creation."""
    return uuid_compat.uuid7()


class Causation(TypedDict):
    """Envelope fields linking a message to its cause: ``Event(**cause.causation(), ...)``."""

    correlation_id: UUID
    causation_id: UUID


def schema_version_field(version: int) -> Any:
    """The ``schema_version`` field of a model at ``version``.

    ``schema_version: int = schema_version_field(2)`` in a model whose shape changed
    (with an upcaster registered for version 1). Strict, so ``"2"`` is not read as 2.
    """
    return Field(default=version, ge=1, strict=True)


class Event(ContractModel):
    """Base of every business and market event (a past-tense fact).

    Subclasses set ``type`` as a ``Literal`` with the class name, ``CONTEXT`` to the
    bounded context (the subject segment), and bump ``schema_version`` with
    ``schema_version_field(n)`` when their shape changes (registering an upcaster for
    the old version).
    """

    CONTEXT: ClassVar[str] = ""
    #: Market-wide events (quotes, bands) have no account; the subject carries a symbol.
    MARKET_WIDE: ClassVar[bool] = False

    event_id: UUID = Field(default_factory=new_event_id)
    """Unique id (UUIDv7); also the bus de-duplication id (Nats-Msg-Id)."""
    type: str
    """The event's class name."""
    schema_version: int = schema_version_field(1)
    """Version of this type's shape; older versions are upcast on parse."""
    occurred_at: AwareDatetime
    """Business time at which the fact happened (from the injected Clock)."""
    producer: ServiceName
    """The service that published the event."""
    account_id: AccountId | None = None
    """Broker account the fact concerns; null for market-wide events."""
    correlation_id: UUID
    """Shared by every message descending from one user action or schedule tick."""
    causation_id: UUID | None = None
    """The event or command that directly caused this one."""

    def causation(self) -> Causation:
        """Envelope fields for an event this one caused: same correlation, this as cause."""
        return {"correlation_id": self.correlation_id, "causation_id": self.event_id}

    def payload(self) -> dict[str, Any]:
        """The event's own fields, JSON-ready (Decimals as strings)."""
        return self.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS))

    def envelope(self) -> dict[str, Any]:
        """The envelope fields, JSON-ready."""
        return self.model_dump(mode="json", include=set(ENVELOPE_FIELDS))


class AccountEvent(Event):
    """An event about one broker account; ``account_id`` is required."""

    account_id: AccountId
    """Broker account the fact concerns."""


class MarketEvent(Event):
    """A market-wide event: no account, routed by ``symbol``."""

    CONTEXT: ClassVar[str] = "market"
    MARKET_WIDE: ClassVar[bool] = True

    account_id: None = None
    """Always null: market data is shared by every account."""
    symbol: MarketSymbol
    """The ticker or OCC option symbol the event is about."""

    @field_validator("account_id", mode="before")
    @classmethod
    def _refuse_account(cls, value: object) -> object:
        if value is not None:
            raise ValueError(f"{cls.__name__} is market-wide and carries no account_id")
        return value
