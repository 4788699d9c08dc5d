"""Client tags: the broker's ``external-identifier`` of each order, derived from its decision.

A tag names the order decision (our ``order_id``, chosen before the first request), so
every retry of one decision sends the same tag and a lookup after a timeout finds the
order the broker may already hold: never two live orders for one decision.

Format: ``sx-`` + the 32 lowercase hex digits of the UUID (35 characters). It uses only
letters, digits and ``-``, well inside the broker's limits and the contracts' ``ClientTag``
(1-64 characters of ``[A-Za-z0-9_.:-]``).
"""

from __future__ import annotations

import re
from uuid import UUID

from libs.contracts.errors import ValidationFailed

TAG_PREFIX = "sx-"
#: Longest external identifier the adapter sends (the contracts' ``ClientTag`` limit).
MAX_TAG_LENGTH = 64
_TAG_RE = re.compile(r"^sx-(?P<hex>[0-9a-f]{32})$")
_ALLOWED_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


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
