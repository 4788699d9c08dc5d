"""Request bodies refuse what the services behind them would fail on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.gateway.context import _JSON_NUL
from services.gateway.models import BrokerLinkRequest


def test_empty_broker_credentials_are_a_validation_error_not_a_server_error() -> None:
    # Found by schemathesis: empty strings reached BrokerCredentials and raised a 500.
    with pytest.raises(ValidationError) as caught:
        BrokerLinkRequest.model_validate(
            {"mode": "PAPER", "client_secret": "", "refresh_token": ""}
        )
    assert {e["loc"][0] for e in caught.value.errors()} == {"client_secret", "refresh_token"}


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'{"email": "a\\u0000@b.c"}', True),
        (b'{"email": "a\\\\u0000@b.c"}', False),  # an escaped backslash, then text
        (b'{"email": "a\\\\\\u0000@b.c"}', True),
        (b'{"email": "a@b.c"}', False),
    ],
)
def test_json_nul_escapes_are_recognised(body: bytes, refused: bool) -> None:
    assert bool(_JSON_NUL.search(body)) is refused
