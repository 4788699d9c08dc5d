"""The API's error type: raised anywhere, rendered in TastyTrade's error shape."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answered as ``{"error": {"code", "message", "errors"?}}``."""

    def __init__(
        self, status: int, code: str, message: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body the SDK's ``validate_response`` understands."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            error["errors"] = self.errors
        return {"error": error}


def not_found(what: str) -> ApiError:
    """404 for an unknown resource."""
    return ApiError(404, "not_found", f"{what} not found")


def invalid(message: str, code: str = "validation_error") -> ApiError:
    """400 for a malformed request."""
    return ApiError(400, code, message)


def unprocessable(code: str, message: str) -> ApiError:
    """422 for a well-formed request the broker refuses."""
    return ApiError(422, code, message)
