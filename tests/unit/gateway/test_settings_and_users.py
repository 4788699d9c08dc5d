"""Settings validation, usernames and password hashes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from libs.contracts.account import AccountSettings
from libs.contracts.errors import ValidationFailed
from libs.contracts.risk import RiskTemplate
from services.gateway.accounts import DEFAULT_SETTINGS, validate_settings
from services.gateway.users import (
    check_password,
    hash_password,
    normalise_username,
    password_matches,
)


def test_the_default_settings_are_valid() -> None:
    assert validate_settings(DEFAULT_SETTINGS) is DEFAULT_SETTINGS
    assert DEFAULT_SETTINGS.risk_template is RiskTemplate.CONSERVATIVE


def test_at_least_one_underlying_must_be_enabled() -> None:
    settings = AccountSettings(risk_template=RiskTemplate.MODERATE, underlyings=())
    with pytest.raises(ValidationFailed) as raised:
        validate_settings(settings)
    assert raised.value.field == "underlyings"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"risk_template": "RECKLESS"}, "risk_template"),
        ({"risk_template": "MODERATE", "automation_offset_cents": 1001}, "automation_offset_cents"),
        ({"risk_template": "MODERATE", "automation_offset_cents": -1}, "automation_offset_cents"),
        ({"risk_template": "MODERATE", "underlyings": ["IWM"]}, "underlyings"),
        ({"risk_template": "MODERATE", "email_topics": ["SPAM"]}, "email_topics"),
        ({"risk_template": "MODERATE", "surprise": True}, "surprise"),
        ({}, "risk_template"),
    ],
)
def test_the_settings_contract_names_the_bad_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        AccountSettings.model_validate(payload)
    assert raised.value.errors()[0]["loc"][0] == field


def test_usernames_are_lower_cased_and_restricted() -> None:
    assert normalise_username("  Alice@Example.com ") == "alice@example.com"
    for bad in ("", "a b", "x" * 65, "émile", "semi;colon"):
        with pytest.raises(ValidationFailed) as raised:
            normalise_username(bad)
        assert raised.value.field == "username"


def test_passwords_have_a_minimum_length() -> None:
    check_password("long enough")
    with pytest.raises(ValidationFailed) as raised:
        check_password("short")
    assert raised.value.field == "password"


def test_argon2_hashes_verify_only_the_right_password() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert password_matches(hashed, "correct horse")
    assert not password_matches(hashed, "wrong horse")
    assert not password_matches(None, "correct horse")
    assert not password_matches("not a hash", "correct horse")
