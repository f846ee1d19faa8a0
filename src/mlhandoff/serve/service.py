"""``ModelService``: one bundle served, and every scoring request's steps in one visible order.

    request id
    → guards: bearer token → rate limit → Content-Type and size → JSON → idempotency
    → readiness → protocol parsing → data contract
    → model routing (the model process, batched there, time-budgeted; fallback and breaker)
    → protocol response
    → idempotency record, prediction log, metrics, access log

Each step lives in its own module (``guards``, ``idempotency``, ``protocols/``, ``routing``);
this one only composes them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mlhandoff.bundle.bundle import open_bundle
from mlhandoff.bundle.signing import TrustAnchors
from mlhandoff.contract.outputs import PredictionRows
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import InputError
from mlhandoff.serve.config import ServeConfig
from mlhandoff.serve.errors import ApiError, without_pii_values
from mlhandoff.serve.guards import (
    BearerAuth,
    BodyReader,
    ClientRateLimit,
    check_headers,
    parse_json,
)
from mlhandoff.serve.idempotency import Claim, Idempotency
from mlhandoff.serve.metrics import ServerMetrics
from mlhandoff.serve.predlog import PredictionLog
from mlhandoff.serve.protocols import ScoringProtocol
from mlhandoff.serve.retention import parse_retention
from mlhandoff.serve.routing import ModelRouter, Router
from mlhandoff.serve.state import MemoryStore, RedisStore, StateStore, ping_store

log = logging.getLogger("mlhandoff.serve")
access_log = logging.getLogger("mlhandoff.access")


class ModelService:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        # Integrity (and with public keys the signature) first: a tampered or unsigned bundle
        # is refused before anything is deserialised.
        anchors = TrustAnchors.load(config.public_keys)
        signed = bool(config.public_keys)
        self.bundle = open_bundle(config.bundle, anchors=anchors, require_signature=signed)
        fallback = (
            open_bundle(config.fallback, anchors=anchors, require_signature=signed)
            if config.fallback
            else None
        )
        self.spec = spec = self.bundle.spec
        api = spec.api
        if config.log_dir and config.log_pii == "hash" and not config.log_pii_key:
            raise InputError("--log-pii hash needs a secret key: pass --log-pii-key-env NAME")
        if config.model_process and os.name == "nt":
            raise InputError("the model process needs a POSIX system; use --no-model-process")
        if api.auth == "bearer" and not config.token:
            raise InputError("the spec sets api.auth: bearer; give the token with --token-env NAME")
        self.metrics = ServerMetrics()
        self.metrics.model_info.labels(
            spec.name, spec.version, spec.model.version_tag, self.bundle.digest
        ).set(1)
        # every violation of every record (bounded): each with its record's index in the batch
        self.contract = CompiledContract(
            without_batch_rules(spec.data_contract), max_examples=MAX_EXAMPLES
        )
        self.pii = {n for n, f in spec.data_contract.fields.items() if f.pii} | set(
            spec.privacy.pii_fields
        )
        self.store: StateStore = (
            RedisStore(config.redis_url, f"{spec.name}-{spec.version}")
            if config.redis_url
            else MemoryStore()
        )
        self.auth = BearerAuth(config.token)
        self.rate_limit = ClientRateLimit(
            self.store, api.rate_limit_rps, by_token=bool(config.token)
        )
        self.body = BodyReader(api.max_body_bytes, config.body_timeout_s)
        self.idempotency = Idempotency(self.store, enabled=api.idempotency)
        self.router: Router = ModelRouter(self.bundle, fallback, self.metrics, config)
        self.rows = PredictionRows(
            self.bundle.outputs, api.abstain_below, self.metrics.abstains.inc
        )
        self.predlog: PredictionLog | None = None
        self._output_fields = self.bundle.outputs.fields

    def model_info(self) -> dict[str, str]:
        return {
            "name": self.spec.name,
            "version": self.spec.version,
            "version_tag": self.spec.model.version_tag,
        }

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await ping_store(self.store)
        if self.config.log_dir:
            kept = self.spec.privacy.log_retention  # the spec's pattern admits only 12h/30d/2w
            retention = parse_retention(kept) if kept else None
            self.predlog = PredictionLog(
                self.config.log_dir,
                pii_fields=sorted(self.pii),
                model_version=f"{self.spec.name}-{self.spec.version}",
                sample_rate=self.config.log_sample_rate,
                pii=self.config.log_pii,
                pii_key=(self.config.log_pii_key or "").encode(),
                on_drop=self.metrics.log_dropped.inc,
                retention=retention,
            )
        await self.router.start()

    async def stop(self) -> None:
        await self.router.stop()
        if self.predlog:
            await asyncio.to_thread(self.predlog.close)
        await self.store.close()

    # --- the request pipeline ----------------------------------------------------------------

    async def handle(self, request: Request, protocol: ScoringProtocol) -> Response:
        started = time.perf_counter()
        api = self.spec.api
        request_id = request.headers.get(api.request_id_header) or uuid.uuid4().hex
        headers = {
            api.request_id_header: request_id,
            "X-Model-Version": self.spec.model.version_tag,
        }
        self.metrics.in_flight.inc()
        status, rows, note = 200, 0, ""
        held: Claim | None = None  # an idempotency key this request holds until it answers
        try:
            check_headers(request)
            self.auth.check(request)
            await self.rate_limit.check(request)
            raw = await self.body.read(request, type_optional=protocol.content_type_optional)
            body = parse_json(raw, nan_is_null=protocol.accepts_nan)
            claim = await self.idempotency.claim(request, protocol.route, raw)
            if claim is not None and claim.replay is not None:
                note = "idempotent-replay"
                return Response(
                    claim.replay,
                    media_type="application/json",
                    headers={**headers, "Idempotent-Replayed": "true"},
                )
            held = claim
            self.router.check_ready()
            data = protocol.parse(body)
            rows = _count(data)
            if rows > api.max_batch_size:
                raise ApiError(
                    413,
                    f"the batch has {rows} records; api.max_batch_size allows {api.max_batch_size}",
                )
            table, report = self.contract.validate_json(data)
            if not report.ok:
                raise ApiError(422, "records break the data contract", violations=report.violations)
            routed = await self.router.predict(table, request_id)
            if routed.answered_by:
                headers["X-Model-Fallback"] = routed.answered_by
                note = f"fallback:{routed.answered_by}"
            content = orjson.dumps(
                protocol.respond(routed.outputs, request_id), option=orjson.OPT_SERIALIZE_NUMPY
            )
            if held is not None:
                await self.idempotency.answer(held, content)
                held = None
            if self.predlog:
                self.predlog.record(request_id, table, routed.outputs)
            self.metrics.observe_outputs(routed.outputs, self._output_fields)
            return Response(content, media_type="application/json", headers=headers)
        except ApiError as exc:
            status = exc.status
            for v in exc.violations:  # labels only from the contract: clients cannot mint series
                known = v.field in self.spec.data_contract.fields
                self.metrics.violations.labels(v.field if known else "(unexpected)", v.rule).inc(
                    v.count
                )
            exc.violations = without_pii_values(exc.violations, self.pii)
            return exc.response(request_id, headers)
        except ClientDisconnect:
            # The client left while sending: nobody reads an answer, and it is not a server
            # error (a 500 here would let any client trip the 5xx alert and rollback rules).
            status, note = CLIENT_CLOSED, "client disconnected"
            return Response(status_code=CLIENT_CLOSED)
        except Exception:
            status = 500
            log.exception("internal error", extra={"request_id": request_id})
            error = ApiError(500, "internal server error", code="internal_error")
            return error.response(request_id, headers)
        finally:
            if held is not None:  # no answer was stored: release the key so a retry can go through
                await self.idempotency.release(held)
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(protocol.route, str(status)).inc()
            self.metrics.latency.labels(protocol.route).observe(elapsed)
            access_log.info(
                "%s %s %d",
                request.method,
                protocol.route,
                status,
                extra={
                    "request_id": request_id,
                    "route": protocol.route,
                    "status": status,
                    "rows": rows,
                    "latency_ms": round(elapsed * 1000, 3),
                    "note": note,
                },
            )


#: The status logged and counted for a client that disconnected mid-request (nginx's 499).
CLIENT_CLOSED = 499

#: Record indices listed per violation in a 422 body (counts are always totals).
MAX_EXAMPLES = 20


def _count(data: Any) -> int:
    """Records in a parsed body: a list of records, or columns of equal length."""
    if isinstance(data, list):
        return len(data)
    return len(next(iter(data.values()), []))
