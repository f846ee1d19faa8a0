"""The guards a scoring request passes before its body is parsed, in the service's order:
bearer token → rate limit → Content-Type and size of the body → JSON. (Idempotency, the last
guard, has its own module.) Each raises an ``ApiError`` that becomes the answer."""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

import orjson
from starlette.requests import Request

from mlhandoff.serve.errors import ApiError
from mlhandoff.serve.state import RateLimiter, StateStore


class BearerAuth:
    """``Authorization: Bearer <token>`` when a token is configured; open otherwise."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def check(self, request: Request) -> None:
        if not self.token:
            return
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise ApiError(
                401,
                "missing bearer token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
            raise ApiError(403, "the bearer token is not valid")


class ClientRateLimit:
    """``api.rate_limit_rps`` per client; off when the spec sets none."""

    def __init__(self, store: StateStore, per_second: float | None, *, by_token: bool) -> None:
        self._limiter = RateLimiter(store, per_second) if per_second else None
        self._per_second = per_second or 0.0
        self._by_token = by_token

    async def check(self, request: Request) -> None:
        if self._limiter is None:
            return
        # Keyed by the verified token when one is configured, else by address: an unverified
        # header would let a client pick a fresh bucket per request.
        address = request.client.host if request.client else "-"
        client = "token" if self._by_token else address
        wait = await self._limiter.check(client)
        if wait is not None:
            raise ApiError(
                429,
                f"more than {self._per_second:g} requests per second",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )


#: Request headers the server takes: a client cannot make it hold megabytes of headers.
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024


def check_headers(request: Request) -> None:
    """431 for more than MAX_HEADERS headers or MAX_HEADER_BYTES of them."""
    raw = request.scope["headers"]
    size = sum(len(k) + len(v) for k, v in raw)
    if len(raw) > MAX_HEADERS or size > MAX_HEADER_BYTES:
        raise ApiError(
            431,
            f"{len(raw)} headers, {size} bytes: the server takes at most {MAX_HEADERS} headers "
            f"and {MAX_HEADER_BYTES} bytes of them",
        )


class BodyReader:
    """The body as bytes: ``application/json`` only, at most ``api.max_body_bytes``, in full
    within ``timeout_s`` (a body sent a byte a second, or shorter than its Content-Length,
    gets 408 instead of holding a connection and its buffer forever)."""

    def __init__(self, max_bytes: int, timeout_s: float = 10.0) -> None:
        self._limit = max_bytes
        self._timeout_s = timeout_s

    async def read(self, request: Request, *, type_optional: bool = False) -> bytes:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._read(request, type_optional)
        except TimeoutError:
            raise ApiError(
                408, f"the body did not arrive in full within {self._timeout_s:g} s"
            ) from None

    async def _read(self, request: Request, type_optional: bool) -> bytes:
        content_type = request.headers.get("content-type", "")
        missing_ok = type_optional and "content-type" not in request.headers
        if not missing_ok and content_type.split(";")[0].strip().lower() != "application/json":
            raise ApiError(
                415, f"Content-Type must be application/json, got '{content_type or 'none'}'"
            )
        limit = self._limit
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the body is {declared} bytes; the limit is {limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the body is over the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)


def parse_json(raw: bytes, *, nan_is_null: bool = False) -> Any:
    """The body's JSON; with ``nan_is_null`` a bare ``NaN`` (as Python clients write a missing
    value) reads as null. ``Infinity`` is refused: no contract value is infinite."""
    if not raw:
        raise ApiError(400, "the body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if nan_is_null and (b"NaN" in raw or b"Infinity" in raw):
            return _python_json(raw)
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None


def _python_json(raw: bytes) -> Any:
    """Python's json module reads NaN and Infinity (orjson, rightly, does not); the body is
    already bounded in size."""

    def constant(name: str) -> None:
        if name != "NaN":
            raise ApiError(400, f"the body holds {name}: no contract value is infinite (send null)")

    try:
        return json.loads(raw, parse_constant=constant)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
