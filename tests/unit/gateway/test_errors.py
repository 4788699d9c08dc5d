"""The one error shape and the kind -> status table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.responses import JSONResponse

from libs.contracts.errors import (
    AuthFailed,
    ErrorKind,
    NotFound,
    RiskWarningUnconfirmed,
    SenexError,
    ServiceUnavailable,
)
from services.gateway.errors import (
    STATUS_BY_KIND,
    CredentialsRefused,
    CsrfRejected,
    LoginRateLimited,
    NotAuthenticated,
    http_status,
    senex_error_response,
    validation_error_response,
)


def body(response: JSONResponse) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(bytes(response.body))
    return parsed


def test_every_kind_has_a_status() -> None:
    assert set(STATUS_BY_KIND) == set(ErrorKind)
    assert all(400 <= status <= 599 for status in STATUS_BY_KIND.values())


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (RiskWarningUnconfirmed("x"), 409),
        (ServiceUnavailable("x"), 503),
        (SenexError("x", kind=ErrorKind.VALIDATION_ERROR), 422),
        (SenexError("x", kind=ErrorKind.RATE_LIMITED), 429),
        (SenexError("x", kind=ErrorKind.BROKER_TIMEOUT), 504),
        (SenexError("x"), 500),
        # The broker refusing stored credentials is upstream trouble, not "log in again".
        (AuthFailed("x"), 502),
        (NotAuthenticated("x"), 401),
        (CsrfRejected("x"), 403),
        (CredentialsRefused("x"), 422),
        (LoginRateLimited("x", retry_after_s=3), 429),
    ],
)
def test_status_of_an_error(error: SenexError, status: int) -> None:
    assert http_status(error) == status


def test_a_typed_error_answers_in_the_one_shape() -> None:
    response = senex_error_response(
        NotFound("suggestion s not found", details={"suggestion_id": "s"})
    )
    assert response.status_code == 404
    assert body(response) == {
        "error": {
            "kind": "NOT_FOUND",
            "message": "suggestion s not found",
            "field": None,
            "details": {"suggestion_id": "s"},
        }
    }


def test_rate_limited_login_says_when_to_retry() -> None:
    response = senex_error_response(LoginRateLimited("slow down", retry_after_s=12.2))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "13"
    assert body(response)["error"]["kind"] == "RATE_LIMITED"


def test_a_validation_error_names_the_field_without_its_source() -> None:
    errors = [
        {"loc": ("body", "custom_credit"), "msg": "Input should be greater than 0", "type": "gt"},
        {"loc": ("query", "limit"), "msg": "too big", "type": "le"},
    ]
    response = validation_error_response(errors)
    assert response.status_code == 422
    error = body(response)["error"]
    assert error["kind"] == "VALIDATION_ERROR"
    assert error["field"] == "custom_credit"
    assert error["message"].startswith("custom_credit: Input should be greater than 0")
    assert error["details"] == {
        "custom_credit": "Input should be greater than 0",
        "limit": "too big",
    }


def test_a_body_that_is_not_json_is_400() -> None:
    errors = [{"loc": ("body", 3), "msg": "JSON decode error", "type": "json_invalid"}]
    response = validation_error_response(errors)
    assert response.status_code == 400
    assert body(response)["error"]["field"] == "body"
