"""The admin endpoint of a server holding a baseline and a candidate: read and change the split.

    GET  /admin/rollout     mode, weight, both versions, sticky key, the last change (who, when)
    PUT  /admin/rollout     {"weight": 25} and/or {"mode": "shadow"}
    POST /admin/rollback    weight 0 in one call: the baseline answers every request

It takes its own bearer token (``--admin-token-env``), never the clients' one: 401 without a
token, 403 with another, and nothing changes. A weight outside [0, 100] is a 422
``weight_out_of_range``, any other bad body a 400 ``invalid_rollout_change``. Every change is
logged with who made it (the admin token's fingerprint and the client's address) and when;
with ``--redis`` every replica routes by it within a second (``serve/canary.py``).

The client side (``change_rollout``, behind ``mlhandoff rollout set-weight`` and ``mlhandoff
rollback``) lives here too, so that the paths and the body are written once.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlhandoff.errors import InputError
from mlhandoff.serve.canary import MODES, Mode, RolloutState, VersionRouter
from mlhandoff.serve.errors import ApiError
from mlhandoff.serve.guards import BearerAuth, BodyReader, parse_json

ROLLOUT_PATH = "/admin/rollout"
ROLLBACK_PATH = "/admin/rollback"


class AdminEndpoint:
    def __init__(self, versions: VersionRouter, token: str | None, request_id_header: str) -> None:
        self._versions = versions
        self._token = token
        self._auth = BearerAuth(token)
        self._request_id_header = request_id_header
        self._body = BodyReader(max_bytes=4096)
        fingerprint = hashlib.sha256((token or "").encode()).hexdigest()[:8]
        self._identity = f"admin-token:{fingerprint}"

    def routes(self) -> list[Route]:
        return [
            Route(ROLLOUT_PATH, self._rollout, methods=["GET", "PUT"]),
            Route(ROLLBACK_PATH, self._rollback, methods=["POST"]),
        ]

    async def _rollout(self, request: Request) -> Response:
        async def act() -> RolloutState:
            if request.method == "GET":
                return await self._versions.state()
            weight, mode = _change(parse_json(await self._body.read(request)))
            return await self._versions.change(self._who(request), weight, mode)

        return await self._answer(request, act)

    async def _rollback(self, request: Request) -> Response:
        async def act() -> RolloutState:
            return await self._versions.change(self._who(request), 0.0, None)

        return await self._answer(request, act)

    async def _answer(self, request: Request, act: Any) -> Response:
        request_id = request.headers.get(self._request_id_header) or uuid.uuid4().hex
        headers = {self._request_id_header: request_id}
        try:
            if not self._token:
                raise ApiError(
                    404, "the admin endpoint is off: start the server with --admin-token-env NAME"
                )
            self._auth.check(request)
            state = await act()
        except ApiError as exc:
            return exc.response(request_id, headers)
        return Response(
            orjson.dumps(self._describe(state)), media_type="application/json", headers=headers
        )

    def _who(self, request: Request) -> str:
        address = request.client.host if request.client else "-"
        return f"{self._identity}@{address}"

    def _describe(self, state: RolloutState) -> dict[str, Any]:
        versions = self._versions
        return {
            **state.to_dict(),
            "candidate": versions.candidate.version,
            "baseline": versions.baseline.version if versions.baseline else None,
            "sticky_key": versions.candidate.bundle.spec.rollout.sticky_key,
        }


def _change(body: Any) -> tuple[float | None, Mode | None]:
    """The weight and mode of a PUT body, or the 4xx that says what is wrong."""
    unexpected = sorted(set(body) - {"weight", "mode"}) if isinstance(body, dict) else []
    if not isinstance(body, dict) or not body or unexpected:
        extra = f"; unexpected keys: {', '.join(unexpected)}" if unexpected else ""
        raise ApiError(
            400,
            f'send {{"weight": 0-100}} and/or {{"mode": "canary" | "shadow"}}{extra}',
            code="invalid_rollout_change",
        )
    weight = body.get("weight")
    if weight is not None and (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not 0 <= weight <= 100
    ):
        raise ApiError(
            422,
            f"weight must be a number in [0, 100] (the candidate's share in percent), got {weight!r}",
            code="weight_out_of_range",
        )
    mode = body.get("mode")
    if mode is not None and mode not in MODES:
        raise ApiError(
            400, f"mode must be canary or shadow, got {mode!r}", code="invalid_rollout_change"
        )
    return (None if weight is None else float(weight)), mode


# --- the client ------------------------------------------------------------------------------


def change_rollout(
    url: str,
    token: str,
    *,
    weight: float | None = None,
    mode: Mode | None = None,
    rollback: bool = False,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Read (nothing given), change (weight, mode) or roll back the split of the server at
    ``url``; the state it answers. InputError naming the server's code when it refuses."""
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(timeout=timeout_s) as client:
            if rollback:
                answer = client.post(base + ROLLBACK_PATH, headers=headers)
            elif weight is None and mode is None:
                answer = client.get(base + ROLLOUT_PATH, headers=headers)
            else:
                body = {k: v for k, v in (("weight", weight), ("mode", mode)) if v is not None}
                answer = client.put(base + ROLLOUT_PATH, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise InputError(f"cannot reach {base}: {type(exc).__name__}: {exc}") from exc
    try:
        data = answer.json()
    except ValueError:
        data = None
    if answer.status_code != 200:
        error = data.get("error", {}) if isinstance(data, dict) else {}
        code = error.get("code", "?")
        message = error.get("message", answer.text[:200])
        raise InputError(f"{base} answered {answer.status_code} ({code}): {message}")
    if not isinstance(data, dict):
        raise InputError(f"{base} did not answer with the rollout state (is it mlhandoff serve?)")
    return data
