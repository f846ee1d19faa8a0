"""The guards a scoring request passes before its body is parsed, in the service's order:
bearer token → rate limit → Content-Type and size of the body → JSON. (Idempotency, the last
guard, has its own module.) Each raises an ``ApiError`` that becomes the answer."""

from __future__ import annotations

import hmac
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


class BodyReader:
    """The body as bytes: ``application/json`` only, at most ``api.max_body_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self._limit = max_bytes

    async def read(self, request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
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


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise ApiError(400, "the body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
