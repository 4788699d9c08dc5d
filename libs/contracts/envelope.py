"""The envelope every event carries, and the base class of all events.

Events are flat on the wire: the envelope fields sit beside the event's own fields,
``type`` naming the model. ``envelope_fields()`` tells them apart, which is what the
event log uses to split a row into columns/metadata and ``payload``.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

import uuid_utils.compat as uuid_compat
from pydantic import Field

from libs.contracts.base import AccountId, AwareDatetime, ContractModel

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


class Event(ContractModel):
    """Base of every business and market event (a past-tense fact).

    Subclasses set ``type`` as a ``Literal`` with the class name, ``CONTEXT`` to the
    bounded context (the subject segment), and bump ``schema_version``'s default when
    their shape changes (registering an upcaster for the old version).
    """

    CONTEXT: ClassVar[str] = ""
    #: Market-wide events (quotes, bands) have no account; the subject carries a symbol.
    MARKET_WIDE: ClassVar[bool] = False

    event_id: UUID = Field(default_factory=new_event_id)
    type: str
    schema_version: int = Field(default=1, ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=64)
    account_id: AccountId | None = None
    correlation_id: UUID
    causation_id: UUID | None = None

    def payload(self) -> dict[str, object]:
        """The event's own fields, JSON-ready (Decimals as strings)."""
        return self.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS))
