"""The ASGI app: one bundle served over HTTP, enforcing its API and data contracts.

Every scoring request goes through the same steps, in this order (see ``ModelService.handle``):
request id → auth → rate limit → content type and size → JSON → idempotency → readiness →
protocol parsing → data contract → model (in its worker process, batched there, time-budgeted,
fallback) → response → idempotency record, prediction log, metrics, access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mlhandoff.bundle.bundle import Bundle, open_bundle
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import HandoffError, InputError, Violation
from mlhandoff.render.openapi import openapi_document
from mlhandoff.serve.errors import ApiError
from mlhandoff.serve.fallback import CircuitBreaker
from mlhandoff.serve.metrics import ServerMetrics
from mlhandoff.serve.payload import (
    Columns,
    columns_from_mlflow,
    columns_from_v2,
    records_from_predict,
    to_table,
)
from mlhandoff.serve.predlog import PiiMode, PredictionLog
from mlhandoff.serve.runners import (
    ModelCrashed,
    ModelExpired,
    ModelFailed,
    ProcessRunner,
    Runner,
    RunOptions,
    ThreadRunner,
)
from mlhandoff.serve.state import MemoryStore, RateLimiter, RedisStore, StateStore, ping_store

log = logging.getLogger("mlhandoff.serve")
access_log = logging.getLogger("mlhandoff.access")

IDEMPOTENCY_TTL_S = 24 * 3600.0


@dataclass
class ServeConfig:
    """How to serve; what the API promises comes from the bundle's spec."""

    bundle: Path
    fallback: Path | None = None
    token: str | None = None
    redis_url: str | None = None
    log_dir: Path | None = None
    log_sample_rate: float = 1.0
    log_pii: PiiMode = "redact"
    #: Secret HMAC key for ``log_pii="hash"``; public values (the bundle digest) would let anyone
    #: with the log test guesses, so hashing is refused without one.
    log_pii_key: str | None = None
    batch_max_rows: int = 256
    batch_max_wait_ms: float = 0.0
    model_threads: int | None = 1
    #: Run the model in a worker process (True) or in a thread of the server (False).
    model_process: bool = True
    #: Kill and restart a worker whose call runs this long (default: 10x the time budget, >= 5 s).
    model_kill_after_s: float | None = None
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    #: For worker processes: the environment variable the token is read from (never the token).
    token_env: str | None = None
    log_pii_key_env: str | None = None
    log_level: str = "info"


class _Model:
    """A bundle being served, and where its model runs (a worker process or a thread)."""

    def __init__(self, bundle: Bundle, metrics: ServerMetrics, config: ServeConfig) -> None:
        spec = bundle.spec
        self.label = f"{spec.name}-{spec.version}"
        self.runner: Runner
        options = RunOptions(
            threads=config.model_threads,
            max_rows=config.batch_max_rows,
            max_wait_s=config.batch_max_wait_ms / 1000,
            on_batch=metrics.batch_rows.observe,
            on_restart=metrics.worker_restarts.labels(self.label).inc,
        )
        if config.model_process:
            kill_after = config.model_kill_after_s or max(5.0, 10 * spec.api.timeout_ms / 1000)
            secrets = tuple(name for name in (config.token_env, config.log_pii_key_env) if name)
            self.runner = ProcessRunner(
                bundle.root,
                options,
                kill_after_s=kill_after,
                log_level=config.log_level,
                hidden_env=secrets,
            )
        else:
            self.runner = ThreadRunner(bundle.root, options)


class ModelService:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        # Integrity first: a tampered bundle is refused before anything is deserialised.
        self.bundle = open_bundle(config.bundle)
        self.fallback_bundle = open_bundle(config.fallback) if config.fallback else None
        self.spec = self.bundle.spec
        api = self.spec.api
        if config.log_dir and config.log_pii == "hash" and not config.log_pii_key:
            raise InputError("--log-pii hash needs a secret key: pass --log-pii-key-env NAME")
        if config.model_process and os.name == "nt":
            raise InputError(
                "the model worker process needs a POSIX system; use --no-model-process"
            )
        if api.auth == "bearer" and not config.token:
            raise InputError("the spec sets api.auth: bearer; give the token with --token-env NAME")
        self.metrics = ServerMetrics()
        self.metrics.model_info.labels(
            self.spec.name, self.spec.version, self.spec.model.version_tag, self.bundle.digest
        ).set(1)
        self.contract = CompiledContract(without_batch_rules(self.spec.data_contract))
        self.pii = {n for n, f in self.spec.data_contract.fields.items() if f.pii} | set(
            self.spec.privacy.pii_fields
        )
        self.store: StateStore = (
            RedisStore(config.redis_url, f"{self.spec.name}-{self.spec.version}")
            if config.redis_url
            else MemoryStore()
        )
        self.limiter = RateLimiter(self.store, api.rate_limit_rps) if api.rate_limit_rps else None
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)
        self.primary: _Model | None = None
        self.fallback: _Model | None = None
        self.ready = False
        self.load_error: str | None = None
        self._loading: asyncio.Task[None] | None = None
        self._models: list[_Model] = []
        self.predlog: PredictionLog | None = None
        self._openapi = orjson.dumps(openapi_document(self.spec))
        self._outputs = self.spec.outputs()
        self._label_field, self._score_field, self._confidence_field = self._output_roles()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await ping_store(self.store)
        if self.config.log_dir:
            self.predlog = PredictionLog(
                self.config.log_dir,
                pii_fields=sorted(self.pii),
                model_version=f"{self.spec.name}-{self.spec.version}",
                sample_rate=self.config.log_sample_rate,
                pii=self.config.log_pii,
                pii_key=(self.config.log_pii_key or "").encode(),
                on_drop=self.metrics.log_dropped.inc,
            )
        self._loading = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        """Load and warm in the background so /healthz answers and /readyz says 503 meanwhile."""
        try:
            primary = _Model(self.bundle, self.metrics, self.config)
            self._models.append(primary)
            await primary.runner.start()
            fallback = None
            if self.fallback_bundle is not None:
                fallback = _Model(self.fallback_bundle, self.metrics, self.config)
                self._models.append(fallback)
                await fallback.runner.start()
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.load_error)
            for model in self._models:
                await model.runner.stop()
            return
        self.primary, self.fallback = primary, fallback
        self.ready = True
        self.metrics.ready.set(1)
        log.info("ready: %s (%s)", primary.label, self.bundle.digest)

    async def stop(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        for model in self._models:  # also those still loading when the server stopped
            await model.runner.stop()
        if self.predlog:
            await asyncio.to_thread(self.predlog.close)
        await self.store.close()

    # --- the request pipeline ----------------------------------------------------------------

    async def handle(
        self,
        request: Request,
        route: str,
        parse: Callable[[Any], Columns | list[dict[str, Any]]],
        respond: Callable[[pa.Table, str], dict[str, Any]],
    ) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get(self.spec.api.request_id_header) or uuid.uuid4().hex
        headers = {
            self.spec.api.request_id_header: request_id,
            "X-Model-Version": self.spec.model.version_tag,
        }
        self.metrics.in_flight.inc()
        status, rows, note = 200, 0, ""
        reserved: str | None = None  # an idempotency key this request holds until it answers
        try:
            self._authorize(request)
            await self._rate_limit(request)
            raw = await self._read_body(request)
            body = _parse_json(raw)
            key = request.headers.get("idempotency-key") if self.spec.api.idempotency else None
            digest = hashlib.sha256(route.encode() + b"\0" + raw).hexdigest() if key else ""
            if key:
                replay = await self._idempotent_begin(key, digest)
                if replay is None:
                    reserved = key
                else:
                    note = "idempotent-replay"
                    return Response(
                        replay,
                        media_type="application/json",
                        headers={**headers, "Idempotent-Replayed": "true"},
                    )
            if not self.ready or self.primary is None:
                raise ApiError(
                    503,
                    "the model failed to load" if self.load_error else "the model is still loading",
                )
            if not self.primary.runner.ready and self.fallback is None:
                raise ApiError(
                    503,
                    "the model worker is restarting after a crash; retry shortly",
                    headers={"Retry-After": "1"},
                )
            table = to_table(parse(body), self.spec.data_contract, self.spec.api.max_batch_size)
            rows = table.num_rows
            report = self.contract.validate(table)
            if not report.ok:
                raise ApiError(422, "records break the data contract", violations=report.violations)
            outputs, used = await self._predict(table, request_id)
            if used:
                headers["X-Model-Fallback"] = used
                note = f"fallback:{used}"
            content = orjson.dumps(respond(outputs, request_id), option=orjson.OPT_SERIALIZE_NUMPY)
            if reserved:
                await self.store.set(
                    f"idem:{reserved}", digest.encode() + b"\n" + content, IDEMPOTENCY_TTL_S
                )
                reserved = None
            if self.predlog:
                self.predlog.record(request_id, table, outputs)
            self._observe(outputs)
            return Response(content, media_type="application/json", headers=headers)
        except ApiError as exc:
            status = exc.status
            for v in exc.violations:  # labels only from the contract: clients cannot mint series
                known = v.field in self.spec.data_contract.fields
                self.metrics.violations.labels(v.field if known else "(unexpected)", v.rule).inc(
                    v.count
                )
            if exc.violations:
                exc.violations = [self._mask(v) for v in exc.violations]
            return _error_response(exc, request_id, {**headers, **exc.headers})
        except Exception:
            status = 500
            log.exception("internal error", extra={"request_id": request_id})
            error = ApiError(500, "internal server error", code="internal_error")
            return _error_response(error, request_id, headers)
        finally:
            if reserved:  # no answer was stored: release the key so a retry can go through
                await self.store.delete(f"idem:{reserved}")
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            access_log.info(
                "%s %s %d",
                request.method,
                route,
                status,
                extra={
                    "request_id": request_id,
                    "route": route,
                    "status": status,
                    "rows": rows,
                    "latency_ms": round(elapsed * 1000, 3),
                    "note": note,
                },
            )

    def _authorize(self, request: Request) -> None:
        if not self.config.token:
            return
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise ApiError(
                401,
                "missing bearer token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(header[7:].strip().encode(), self.config.token.encode()):
            raise ApiError(403, "the bearer token is not valid")

    async def _rate_limit(self, request: Request) -> None:
        if self.limiter is None:
            return
        # Keyed by the verified token when one is configured, else by address: an unverified
        # header would let a client pick a fresh bucket per request.
        address = request.client.host if request.client else "-"
        client = "token" if self.config.token else address
        wait = await self.limiter.check(client)
        if wait is not None:
            raise ApiError(
                429,
                f"more than {self.spec.api.rate_limit_rps:g} requests per second",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )

    async def _read_body(self, request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise ApiError(
                415, f"Content-Type must be application/json, got '{content_type or 'none'}'"
            )
        limit = self.spec.api.max_body_bytes
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

    async def _idempotent_begin(self, key: str, digest: str) -> bytes | None:
        """Reserve ``key`` for this request (None), or the stored answer to replay.

        The reservation is atomic (set-if-absent, also in Redis), so two concurrent requests
        with one key never both run the model."""
        pending = digest.encode() + b"\n"
        if await self.store.set_if_absent(f"idem:{key}", pending, IDEMPOTENCY_TTL_S):
            return None
        stored = await self.store.get(f"idem:{key}") or pending
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
        return content

    async def _call(self, model: _Model, table: pa.Table) -> pa.Table:
        """The model's outputs within the time budget; TimeoutError past it."""
        budget = self.spec.api.timeout_ms / 1000
        deadline = time.monotonic() + budget
        try:
            return await asyncio.wait_for(model.runner.predict(table, deadline), budget)
        except ModelExpired:  # the worker dropped it: the budget ran out while it was busy
            raise TimeoutError from None

    async def _predict(self, table: pa.Table, request_id: str) -> tuple[pa.Table, str | None]:
        assert self.primary is not None
        reason = "circuit_open"
        if self.fallback is not None and not self.primary.runner.ready:
            reason = "restarting"  # not a failure of the model: no breaker count, no error log
        elif self.fallback is None or self.breaker.allow():
            try:
                outputs = await self._call(self.primary, table)
                self.breaker.record(True)
                return outputs, None
            except TimeoutError:
                self.breaker.record(False)
                reason = "timeout"
                if self.fallback is None:
                    raise ApiError(
                        504,
                        f"the model took longer than its {self.spec.api.timeout_ms:g} ms budget",
                    ) from None
            except Exception as exc:
                self.breaker.record(False)
                reason = "error"
                _log_model_failure("model", exc, request_id)
                if self.fallback is None:
                    raise ApiError(
                        500, f"the model failed on this request (request id {request_id})"
                    ) from None
        assert self.fallback is not None
        self.metrics.fallbacks.labels(reason).inc()
        if not self.fallback.runner.ready:
            raise ApiError(
                503,
                "the model workers are restarting after a crash; retry shortly",
                headers={"Retry-After": "1"},
            )
        try:
            outputs = await self._call(self.fallback, table)
        except TimeoutError:
            raise ApiError(
                504, "the primary and the fallback model both exceeded the time budget"
            ) from None
        except Exception as exc:
            _log_model_failure("fallback model", exc, request_id)
            raise ApiError(
                500, f"the primary and the fallback model failed (request id {request_id})"
            ) from None
        return outputs, self.fallback.label

    # --- responses -----------------------------------------------------------------------------

    def _output_roles(self) -> tuple[str | None, str | None, str | None]:
        roles: dict[str, str] = {}
        for name, out in self._outputs.fields.items():
            roles[out.source or name] = name
        return roles.get("label"), roles.get("score"), roles.get("confidence")

    def rows(self, outputs: pa.Table) -> list[dict[str, Any]]:
        rows = outputs.to_pylist()
        threshold = self.spec.api.abstain_below
        if threshold is None or self._label_field is None:
            return rows
        for row in rows:
            if self._confidence_field is not None:
                confidence = row[self._confidence_field]
            elif self._score_field is not None:
                confidence = max(row[self._score_field], 1 - row[self._score_field])
            else:
                continue
            row["abstain"] = bool(confidence < threshold)
            if row["abstain"]:
                row[self._label_field] = None
                self.metrics.abstains.inc()
        return rows

    def readiness(self) -> str:
        """ready; degraded (the primary's worker restarts, the fallback answers); restarting
        (no fallback); loading; failed (see load_error). Ready and degraded can serve."""
        if self.load_error:
            return "failed"
        if not self.ready or self.primary is None:
            return "loading"
        if self.primary.runner.ready:
            return "ready"
        return "degraded" if self.fallback and self.fallback.runner.ready else "restarting"

    def model_info(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "version": self.spec.version,
            "version_tag": self.spec.model.version_tag,
        }

    def _observe(self, outputs: pa.Table) -> None:
        for name, out in self._outputs.fields.items():
            if out.type == "float" and outputs.num_rows <= 64:
                histogram = self.metrics.prediction.labels(name)
                for value in outputs.column(name).to_pylist():
                    if value is not None:
                        histogram.observe(value)

    def _mask(self, violation: Violation) -> Violation:
        """Violations of PII fields keep field, rule and count, never values."""
        if violation.field not in self.pii:
            return violation
        return Violation(
            violation.field,
            violation.rule,
            f"{violation.count} value(s) break rule '{violation.rule}' (values of PII fields are not shown)",
            violation.count,
            violation.rows,
        )

    @property
    def openapi(self) -> bytes:
        return self._openapi


def _log_model_failure(which: str, exc: BaseException, request_id: str) -> None:
    """Exception type and stack, never its message: models put input values (PII) in messages."""
    if isinstance(exc, ModelFailed):
        kind, stack = exc.type_name, exc.stack
    else:
        kind, stack = type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__))
    if isinstance(exc, ModelCrashed):  # our own words (exit status, time limit), no model text
        kind = f"{kind}: {exc}"
    log.error("%s failed: %s", which, kind, extra={"request_id": request_id, "stack": stack})


def _parse_json(raw: bytes) -> Any:
    if not raw:
        raise ApiError(400, "the body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None


def _error_response(error: ApiError, request_id: str, headers: dict[str, str]) -> Response:
    return Response(
        orjson.dumps(error.body(request_id)),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


_DOCS = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><noscript>The API is described in <a href="/openapi.json">/openapi.json</a>.</noscript>
<div id="ui"><p>Loading the API explorer; the raw document is at <a href="/openapi.json">/openapi.json</a>.</p></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>window.onload = () => SwaggerUIBundle({{url: "/openapi.json", dom_id: "#ui"}});</script>
</body></html>"""


def create_app(config: ServeConfig) -> Starlette:
    """The Starlette app serving ``config.bundle``; raises HandoffError for an unusable bundle."""
    service = ModelService(config)
    spec = service.spec

    def json_response(data: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json")

    async def predict(request: Request) -> Response:
        return await service.handle(
            request,
            "/predict",
            records_from_predict,
            lambda out, rid: {
                "predictions": service.rows(out),
                "model": service.model_info(),
                "request_id": rid,
            },
        )

    async def invocations(request: Request) -> Response:
        return await service.handle(
            request,
            "/invocations",
            columns_from_mlflow,
            lambda out, rid: {"predictions": service.rows(out)},
        )

    async def v2_infer(request: Request) -> Response:
        if request.path_params["name"] != spec.name:
            return json_response(
                ApiError(
                    404,
                    f"no model named '{request.path_params['name']}'; this server serves '{spec.name}'",
                ).body("-"),
                404,
            )

        def respond(out: pa.Table, rid: str) -> dict[str, Any]:
            tensors = [
                {
                    "name": n,
                    "shape": [out.num_rows],
                    "datatype": _V2_TYPES.get(str(out.column(n).type), "BYTES"),
                    "data": out.column(n).to_pylist(),
                }
                for n in out.column_names
            ]
            return {
                "model_name": spec.name,
                "model_version": spec.version,
                "id": rid,
                "outputs": tensors,
            }

        return await service.handle(request, "/v2/models/{name}/infer", columns_from_v2, respond)

    async def v2_model(request: Request) -> Response:
        if request.path_params["name"] != spec.name:
            return json_response(
                ApiError(404, f"no model named '{request.path_params['name']}'").body("-"), 404
            )
        return json_response(
            {
                "name": spec.name,
                "versions": [spec.version],
                "platform": f"mlhandoff-{spec.model.flavor}",
                "inputs": [
                    {"name": n, "datatype": _V2_FIELD_TYPES[f.type], "shape": [-1]}
                    for n, f in spec.data_contract.fields.items()
                ],
                "outputs": [
                    {"name": n, "datatype": _V2_FIELD_TYPES[f.type], "shape": [-1]}
                    for n, f in spec.outputs().fields.items()
                ],
            }
        )

    async def live(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def ready(request: Request) -> Response:
        status = service.readiness()
        if status in ("ready", "degraded"):
            return json_response({"status": status, "model": service.model_info()})
        detail = {"status": status}
        if service.load_error:
            detail["error"] = service.load_error
        return json_response(detail, 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return Response(service.openapi, media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(_DOCS.format(title=f"{spec.name} API"))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        status = status if status in (404, 405) else 400
        error = ApiError(
            status,
            "no such route"
            if status == 404
            else f"{request.method} is not allowed here"
            if status == 405
            else "bad request",
        )
        return json_response(
            error.body(request.headers.get(spec.api.request_id_header, "-")), status
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", v2_model, methods=["GET"]),
        Route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
        Route("/healthz", live, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.service = service
    return app


_V2_TYPES = {
    "double": "FP64",
    "float": "FP32",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
    "string": "BYTES",
}
_V2_FIELD_TYPES = {
    "int": "INT64",
    "float": "FP64",
    "bool": "BOOL",
    "string": "BYTES",
    "category": "BYTES",
    "timestamp": "BYTES",
    "date": "BYTES",
}

__all__ = ["HandoffError", "ModelService", "ServeConfig", "create_app"]
