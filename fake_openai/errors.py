"""HTTP errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

One place maps an HTTP status (or a named fault such as ``insufficient_quota``) to the body,
type, code and headers the real API uses, so injected faults and genuine validation errors look
the same to the SDK: same exception class, same ``.code``, same retry behaviour.
"""

from __future__ import annotations

import math

# status -> (type, code, message)
_BY_STATUS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: ("invalid_request_error", "not_found", "Not found."),
    408: ("invalid_request_error", "timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "The request conflicted with another request."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in a moment.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


class ApiError(Exception):
    """Raised by handlers; rendered by the app into an error reply."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_type, default_code, default_message = _BY_STATUS.get(
            status,
            ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}."),
        )
        self.status = status
        self.message = message or default_message
        self.type = type or default_type
        self.code = code if code is not None else default_code
        self.param = param
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def retry_after_header(seconds: float) -> str:
    """Retry-After as integer seconds >= 1, as the spec describes it."""
    return str(max(1, math.ceil(seconds)))


def injected(token: str, *, retry_after: float) -> ApiError:
    """The error for a fault token: an HTTP status or ``insufficient_quota``."""
    if token == "insufficient_quota":
        return ApiError(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    status = int(token)
    headers = {"retry-after": retry_after_header(retry_after)} if status == 429 else None
    return ApiError(status, headers=headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(response_id: str) -> ApiError:
    return ApiError(
        404, f"Response with id '{response_id}' not found.", param="response_id", code="not_found"
    )
