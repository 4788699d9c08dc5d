"""An order as it is sent to the broker, and the client tag that names its decision.

A tag names the order decision (our ``order_id``, chosen before the first request), so
every retry of one decision sends the same tag and a lookup after a timeout finds the
order the broker may already hold: never two live orders for one decision.

Tag format: ``sx-`` + the 32 lowercase hex digits of the UUID (35 characters). It uses
only letters, digits and ``-``, well inside the broker's limits and the contracts'
``ClientTag`` (1-64 characters of ``[A-Za-z0-9_.:-]``).

Ids of decisions are UUIDv5 of what they stand for, so the reaction to one reservation
names the same order (and client tag) however often it runs, in whichever service.
"""

from __future__ import annotations

import re
from uuid import UUID, uuid5

from pydantic import Field

from libs.contracts.base import ContractModel, Money, Ticker
from libs.contracts.errors import ValidationFailed
from libs.contracts.execution import ClientTag, OrderLeg, TimeInForce, ratio_unit

TAG_PREFIX = "sx-"
#: Longest external identifier the adapter sends (the contracts' ``ClientTag`` limit).
MAX_TAG_LENGTH = 64
_TAG_RE = re.compile(r"^sx-(?P<hex>[0-9a-f]{32})$")
_ALLOWED_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

#: Namespace of the derived order and position ids (fixed forever: changing it re-names
#: every order, so a restart would no longer find the orders it sent).
ORDER_NAMESPACE = UUID("5e9e7c1a-3f0b-5c4e-9d1a-6b2f0e4a8c11")


class OrderRequest(ContractModel):
    """A limit order to send: legs in ratio quantities, a signed price per ratio unit."""

    underlying: Ticker
    legs: tuple[OrderLeg, ...] = Field(min_length=1)
    limit_price: Money
    """Signed: + credit received, - debit paid; per unit of the leg ratio."""
    time_in_force: TimeInForce
    client_tag: ClientTag
    """The decision's tag (`client_tag_for`), sent as the broker's external identifier."""

    @property
    def ratio_unit(self) -> int:
        """GCD of the leg quantities."""
        return ratio_unit(self.legs)


def client_tag_for(decision_id: UUID) -> str:
    """The tag of the order decided by ``decision_id`` (deterministic)."""
    return f"{TAG_PREFIX}{decision_id.hex}"


def decision_id_of(tag: str) -> UUID | None:
    """The decision a tag made by `client_tag_for` names; None for foreign tags."""
    match = _TAG_RE.match(tag)
    return UUID(hex=match["hex"]) if match else None


def check_client_tag(tag: str) -> str:
    """``tag`` if the broker can carry it; raises VALIDATION_ERROR otherwise."""
    if not _ALLOWED_RE.match(tag):
        raise ValidationFailed(
            f"client tag {tag!r} must be 1-{MAX_TAG_LENGTH} characters of A-Z a-z 0-9 _ . : -",
            field="client_tag",
        )
    return tag


def opening_order_id(reservation_id: UUID) -> UUID:
    """The opening order placed under ``reservation_id`` (one per reservation)."""
    return uuid5(ORDER_NAMESPACE, f"open:{reservation_id}")
