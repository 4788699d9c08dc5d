"""The CSRF check of state-changing requests, and session token hashing."""

from __future__ import annotations

import pytest

from services.gateway.auth import check_csrf, new_token, token_hash
from services.gateway.errors import CsrfRejected

TOKEN = "expected-token"


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_safe_methods_need_no_token(method: str) -> None:
    check_csrf(method, TOKEN, None)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_state_changing_methods_need_the_token(method: str) -> None:
    with pytest.raises(CsrfRejected, match="missing"):
        check_csrf(method, TOKEN, None)
    with pytest.raises(CsrfRejected, match="missing"):
        check_csrf(method, TOKEN, "")
    with pytest.raises(CsrfRejected, match="does not match"):
        check_csrf(method, TOKEN, "expected-tokeN")
    check_csrf(method, TOKEN, TOKEN)


def test_tokens_are_random_and_only_their_hash_is_stored() -> None:
    a, b = new_token(), new_token()
    assert a != b
    assert len(a) >= 43  # 256 bits in URL-safe base64
    assert token_hash(a) != a
    assert token_hash(a) == token_hash(a)
    assert len(token_hash(a)) == 64
