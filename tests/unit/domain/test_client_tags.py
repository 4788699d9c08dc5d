"""Client tags name the order decision and fit the broker's external identifier."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from libs.contracts.errors import ValidationFailed
from libs.domain.orders import check_client_tag, client_tag_for, decision_id_of

DECISION = UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")


def test_tag_is_deterministic_per_decision() -> None:
    assert client_tag_for(DECISION) == client_tag_for(UUID(str(DECISION)))
    assert client_tag_for(DECISION) == "sx-0190a1b2c3d47e5f8a9b0c1d2e3f4a5b"


def test_tag_fits_the_contract_client_tag() -> None:
    tag = client_tag_for(DECISION)
    assert len(tag) <= 64
    assert re.fullmatch(r"[A-Za-z0-9_.:-]+", tag)
    assert check_client_tag(tag) == tag


def test_tag_names_its_decision() -> None:
    assert decision_id_of(client_tag_for(DECISION)) == DECISION
    assert decision_id_of("bot-42") is None


@pytest.mark.parametrize("tag", ["", "has space", "x" * 65, "semi;colon"])
def test_tags_the_broker_cannot_carry_are_refused(tag: str) -> None:
    with pytest.raises(ValidationFailed):
        check_client_tag(tag)
