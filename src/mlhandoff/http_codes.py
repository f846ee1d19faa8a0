"""The serving API's error codes: the stable ``code`` of every answer other than 200.

Clients branch on these codes, never on message text, so a published code keeps its meaning.
The server answers with them (``serve/errors.py``); the OpenAPI document and the bundle's README
list them (``render/``). The table sits low in the package, beside ``errors.py``, so that
``render`` documents the server's codes without importing ``serve``.
"""

from __future__ import annotations

#: Every error the server answers with, by HTTP status: (the status's code, when).
ERROR_CODES: dict[int, tuple[str, str]] = {
    400: (
        "malformed_request",
        "the body is not valid JSON or not in a supported shape (or `idempotency_key_too_long`: "
        "an Idempotency-Key over 200 characters; `invalid_rollout_change`: an admin request's "
        "body is not `{weight, mode}`)",
    ),
    401: ("unauthorized", "a bearer token is configured and the request has none"),
    403: ("forbidden", "the bearer token is wrong"),
    404: ("not_found", "no such route or model name"),
    408: ("body_timeout", "the body did not arrive in full within the server's body-read time"),
    405: ("method_not_allowed", "the route exists but not for this HTTP method"),
    409: ("idempotency_conflict", "the Idempotency-Key was used before with another body"),
    413: ("payload_too_large", "the body or the batch is larger than allowed"),
    415: ("unsupported_media_type", "the Content-Type is not application/json"),
    422: (
        "contract_violation",
        "records break the data contract; every violation is listed (or `weight_out_of_range`: "
        "an admin request's weight is not a number in [0, 100])",
    ),
    429: ("rate_limited", "too many requests; retry after the Retry-After header's seconds"),
    431: ("headers_too_large", "more request headers, or more header bytes, than the server takes"),
    500: (
        "model_error",
        "the model failed (or `internal_error`: the server did); the body carries the request id, never a traceback",
    ),
    503: (
        "not_ready",
        "the model is still loading or warming up, or its model process is restarting",
    ),
    504: ("model_timeout", "the model exceeded its time budget (api.timeout_ms)"),
}

#: Codes that share a status with the status's own code above (whose "when" names them).
MORE_CODES: dict[str, int] = {
    "internal_error": 500,
    "idempotency_key_too_long": 400,
    "invalid_rollout_change": 400,
    "weight_out_of_range": 422,
}


def all_codes() -> list[str]:
    """Every code the server can answer with, sorted (the OpenAPI document's enum)."""
    return sorted({code for code, _ in ERROR_CODES.values()} | set(MORE_CODES))
