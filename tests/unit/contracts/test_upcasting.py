"""Upcasters bring old schema versions up to the current model, in order, on parse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Literal

import orjson
import pytest

from libs.contracts.base import Money
from libs.contracts.envelope import AccountEvent, schema_version_field
from libs.contracts.errors import InvalidPayload, UnsupportedSchemaVersion
from libs.contracts.registry import Registry
from libs.contracts.upcasting import Upcasters
from tests.unit.contracts.examples import envelope


class FeeCharged(AccountEvent):
    """A test-local event at version 3.

    v1: ``{"fee": "0.65"}`` (dollars, no currency)
    v2: ``{"amount": "0.65"}`` (renamed)
    v3: ``{"amount": "0.65", "currency": "USD"}`` (currency added)
    """

    CONTEXT: ClassVar[str] = "account"
    type: Literal["FeeCharged"] = "FeeCharged"
    schema_version: int = schema_version_field(3)
    amount: Money
    currency: str


def _rename_fee(data: dict[str, Any]) -> dict[str, Any]:
    data["amount"] = data.pop("fee")
    return data


def _add_currency(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "USD"}


@pytest.fixture
def upcasters() -> Upcasters:
    steps = Upcasters()
    steps.register("FeeCharged", 1, _rename_fee)

    @steps("FeeCharged", 2)
    def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        return _add_currency(data)

    return steps


@pytest.fixture
def registry(upcasters: Upcasters) -> Registry[AccountEvent]:
    return Registry("event", [FeeCharged], upcasters)


def _v1_message() -> dict[str, Any]:
    current = orjson.loads(
        FeeCharged(**envelope(), amount=Decimal("0.65"), currency="USD").model_dump_json()
    )
    del current["amount"], current["currency"]
    return {**current, "schema_version": 1, "fee": "0.65"}


def test_a_version_1_message_is_upcast_through_every_step_in_order(registry):
    event = registry.parse(orjson.dumps(_v1_message()))

    assert isinstance(event, FeeCharged)
    assert event.amount == Decimal("0.65")
    assert event.currency == "USD"
    assert event.schema_version == 3


def test_a_version_2_message_needs_only_the_last_step(registry):
    message = _rename_fee(_v1_message()) | {"schema_version": 2}

    event = registry.parse(message)

    assert (event.amount, event.currency, event.schema_version) == (Decimal("0.65"), "USD", 3)


def test_a_current_message_is_not_touched_by_upcasters(registry):
    event = FeeCharged(**envelope(), amount=Decimal("1.30"), currency="EUR")

    assert registry.parse(registry.encode(event)) == event


def test_upcasting_never_changes_the_callers_mapping(registry):
    message = _v1_message()
    before = dict(message)

    registry.parse(message)

    assert message == before


def test_a_version_newer_than_the_model_is_refused(registry):
    message = orjson.loads(
        FeeCharged(**envelope(), amount=Decimal(1), currency="USD").model_dump_json()
    )
    message["schema_version"] = 4

    with pytest.raises(UnsupportedSchemaVersion, match="cannot read schema_version 4"):
        registry.parse(message)


def test_a_missing_step_is_refused_naming_the_version():
    registry = Registry("event", [FeeCharged], Upcasters())

    with pytest.raises(UnsupportedSchemaVersion) as caught:
        registry.parse(_v1_message())

    assert (caught.value.version, caught.value.current) == (1, 3)
    assert caught.value.field == "schema_version"


def test_a_step_cannot_be_registered_twice(upcasters):
    with pytest.raises(ValueError, match="already registered"):
        upcasters.register("FeeCharged", 1, _rename_fee)


def test_a_step_reports_its_registration(upcasters):
    assert ("FeeCharged", 1) in upcasters
    assert ("FeeCharged", 3) not in upcasters


def test_each_step_is_labelled_with_the_version_it_produced(upcasters):
    seen: list[int] = []

    def spy(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data["schema_version"])
        return data

    upcasters.register("Spy", 1, spy)
    upcasters.register("Spy", 2, spy)

    result = upcasters.upcast("Spy", {"schema_version": 1}, 1, 3)

    assert seen == [1, 2]
    assert result["schema_version"] == 3


def test_a_version_written_as_text_is_refused_not_guessed(registry):
    message = _v1_message() | {"schema_version": "1"}

    with pytest.raises(
        InvalidPayload, match=r"^FeeCharged\.schema_version: Input should be a valid integer"
    ):
        registry.parse(orjson.dumps(message))
