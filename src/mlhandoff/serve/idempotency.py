"""``Idempotency-Key``: one model run per key; a retry with the same body gets the stored answer.

A key is claimed atomically (set-if-absent, also in Redis), so two concurrent requests with one
key never both run the model. A claim is either answered (the response is stored for 24 h) or
released (the request failed), so that a retry can go through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from starlette.requests import Request

from mlhandoff.serve.errors import ApiError
from mlhandoff.serve.state import StateStore

IDEMPOTENCY_TTL_S = 24 * 3600.0
#: The longest Idempotency-Key taken: keys are stored for a day, so their size is bounded.
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Claim:
    """A key this request holds until it answers (``replay`` is None), or a stored answer."""

    key: str
    digest: str
    replay: bytes | None = None


class Idempotency:
    def __init__(self, store: StateStore, *, enabled: bool) -> None:
        self._store = store
        self._enabled = enabled

    async def claim(self, request: Request, route: str, raw: bytes) -> Claim | None:
        """None without a key; else this request's claim on it, or the answer to replay."""
        key = request.headers.get("idempotency-key") if self._enabled else None
        if not key:
            return None
        if len(key) > MAX_KEY_LENGTH:
            raise ApiError(
                400,
                f"the Idempotency-Key is {len(key)} characters; at most {MAX_KEY_LENGTH} are taken",
                code="idempotency_key_too_long",
            )
        digest = hashlib.sha256(route.encode() + b"\0" + raw).hexdigest()
        pending = digest.encode() + b"\n"
        if await self._store.set_if_absent(_name(key), pending, IDEMPOTENCY_TTL_S):
            return Claim(key, digest)
        stored = await self._store.get(_name(key)) or pending
        stored_digest, _, content = stored.partition(b"\n")
        if stored_digest.decode() != digest:
            raise ApiError(
                409, "this Idempotency-Key was already used with a different request body"
            )
        if not content:
            raise ApiError(
                409,
                "a request with this Idempotency-Key is still being answered; retry shortly",
                headers={"Retry-After": "1"},
            )
        return Claim(key, digest, replay=content)

    async def answer(self, claim: Claim, content: bytes) -> None:
        await self._store.set(
            _name(claim.key), claim.digest.encode() + b"\n" + content, IDEMPOTENCY_TTL_S
        )

    async def release(self, claim: Claim) -> None:
        await self._store.delete(_name(claim.key))


def _name(key: str) -> str:
    return f"idem:{key}"
