"""``ModelService``: one bundle served, and every scoring request's steps in one visible order.

    request id
    → guards: bearer token → rate limit → Content-Type and size → JSON → idempotency
    → readiness → protocol parsing
    → version (with a baseline: canary or shadow split, sticky by key) → that version's contract
    → model routing (the model process, batched there, time-budgeted; fallback and breaker)
    → protocol response (the answering version's) → the shadow version, in the background
    → idempotency record, prediction log, live drift (the served bundle's answers), metrics,
    access log

Each step lives in its own module (``guards``, ``idempotency``, ``protocols/``, ``canary``,
``routing``); this one only composes them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import pyarrow as pa
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mlhandoff.bundle.bundle import open_bundle
from mlhandoff.bundle.signing import TrustAnchors
from mlhandoff.errors import InputError
from mlhandoff.serve.canary import (
    Mode,
    ServedVersion,
    VersionRouter,
    check_pair,
    served_version,
)
from mlhandoff.serve.config import ServeConfig
from mlhandoff.serve.drift import LiveDrift, live_drift
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
from mlhandoff.serve.routing import ModelRouter
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
        baseline = (
            open_bundle(config.baseline, anchors=anchors, require_signature=signed)
            if config.baseline
            else None
        )
        self.spec = spec = self.bundle.spec
        mode, weight = _split_options(config, self.bundle.spec.rollout.steps)
        if baseline is not None:
            check_pair(self.bundle, baseline)
        api = spec.api
        if config.log_dir and config.log_pii == "hash" and not config.log_pii_key:
            raise InputError("--log-pii hash needs a secret key: pass --log-pii-key-env NAME")
        if config.model_process and os.name == "nt":
            raise InputError("the model process needs a POSIX system; use --no-model-process")
        if api.auth == "bearer" and not config.token:
            raise InputError("the spec sets api.auth: bearer; give the token with --token-env NAME")
        self.metrics = ServerMetrics()
        for served in (self.bundle, baseline):
            if served is not None:
                self.metrics.model_info.labels(
                    served.spec.name,
                    served.spec.version,
                    served.spec.model.version_tag,
                    served.digest,
                ).set(1)
        # PII of either version stays out of the log and of 422 bodies
        self.pii = {
            name
            for served in (self.bundle, baseline)
            if served is not None
            for name in (
                {n for n, f in served.spec.data_contract.fields.items() if f.pii}
                | set(served.spec.privacy.pii_fields)
            )
        }
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
        # every violation of every record (bounded): each with its record's index in the batch
        candidate = served_version(
            self.bundle,
            ModelRouter(self.bundle, fallback, self.metrics, config),
            self.metrics,
            MAX_EXAMPLES,
        )
        self.router = VersionRouter(
            candidate,
            None
            if baseline is None
            else served_version(
                baseline,
                ModelRouter(baseline, None, self.metrics, config),
                self.metrics,
                MAX_EXAMPLES,
            ),
            mode=mode,
            weight=weight,
            metrics=self.metrics,
            shared=self.store if config.redis_url else None,
        )
        self.contract, self.rows = candidate.contract, candidate.rows
        #: The ``version`` label of a request refused before a version was chosen.
        self._unrouted = candidate.version if baseline is None else "-"
        self._shadows: set[asyncio.Task[None]] = set()
        self.predlog: PredictionLog | None = None
        self.drift: LiveDrift | None = (
            live_drift(self.bundle, self.metrics.registry) if config.live_drift else None
        )

    def model_info(self) -> dict[str, str]:
        return self.router.candidate.info()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await ping_store(self.store)
        if self.config.log_dir:
            kept = self.spec.privacy.log_retention  # the spec's pattern admits only 12h/30d/2w
            retention = parse_retention(kept) if kept else None
            self.predlog = PredictionLog(
                self.config.log_dir,
                pii_fields=sorted(self.pii),
                model_version=self.spec.version,
                sample_rate=self.config.log_sample_rate,
                pii=self.config.log_pii,
                pii_key=(self.config.log_pii_key or "").encode(),
                on_drop=self.metrics.log_dropped.inc,
                retention=retention,
            )
        await self.router.start()

    async def stop(self) -> None:
        if self._shadows:  # shadow predictions still running: let them finish and log
            await asyncio.wait(self._shadows, timeout=10)
        await self.router.stop()
        if self.predlog:
            await asyncio.to_thread(self.predlog.close)
        await self.store.close()

    # --- the request pipeline ----------------------------------------------------------------

    async def handle(self, request: Request, protocols: Mapping[str, ScoringProtocol]) -> Response:
        """One scoring request; ``protocols``: the protocol answering for each version."""
        started = time.perf_counter()
        protocol = protocols[self.router.candidate.version]  # parsing is the same for all
        api = self.spec.api
        request_id = request.headers.get(api.request_id_header) or uuid.uuid4().hex
        headers = {api.request_id_header: request_id}
        if self.router.baseline is None:
            headers["X-Model-Version"] = self.spec.model.version_tag
        self.metrics.in_flight.inc()
        status, rows, note = 200, 0, ""
        version, answering, table, outputs = self._unrouted, None, None, None
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
            chosen, shadow = await self.router.choose(data)
            routed_s = time.perf_counter() - started
            answering, table = self._validated(chosen, data)
            version = answering.version
            headers["X-Model-Version"] = answering.tag
            routed = await answering.router.predict(table, request_id)
            if routed.answered_by:
                headers["X-Model-Fallback"] = routed.answered_by
                note = f"fallback:{routed.answered_by}"
            outputs = routed.outputs
            content = orjson.dumps(
                protocols[version].respond(outputs, request_id), option=orjson.OPT_SERIALIZE_NUMPY
            )
            if held is not None:
                await self.idempotency.answer(held, content)
                held = None
            self.metrics.observe_outputs(outputs, answering.bundle.outputs.fields, version)
            if shadow is not None:
                self._shadow(shadow, data, request_id, routed_s)
            if self.drift and answering.bundle is self.bundle:  # its reference profile
                self.drift.observe(table, outputs)
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
            self.metrics.requests.labels(protocol.route, str(status), version).inc()
            self.metrics.latency.labels(protocol.route, version).observe(elapsed)
            # answers, and failures of the model (5xx): what the rollout judge reads
            answered = outputs is not None or status >= 500
            if self.predlog and answering is not None and table is not None and answered:
                self.predlog.record(
                    request_id,
                    table,
                    answering.null_outputs(table.num_rows) if outputs is None else outputs,
                    version=version,
                    latency_ms=elapsed * 1000,
                    status=status,
                )
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

    # --- versions ------------------------------------------------------------------------------

    def _validated(self, chosen: ServedVersion, data: Any) -> tuple[ServedVersion, pa.Table]:
        """The version that answers and the records typed by its contract. A request routed to
        the candidate that breaks the candidate's contract but not the baseline's is answered by
        the baseline (and counted); one that breaks the baseline's is a 422 with its violations."""
        table, report = chosen.contract.validate_json(data)
        if report.ok:
            return chosen, table
        baseline = self.router.baseline
        if baseline is not None and chosen is not baseline:
            table, report = baseline.contract.validate_json(data)
            if report.ok:
                self.metrics.candidate_refused.inc()
                return baseline, table
        raise ApiError(422, "records break the data contract", violations=report.violations)

    def _shadow(
        self, candidate: ServedVersion, data: Any, request_id: str, routed_s: float
    ) -> None:
        """Score the request with the candidate in the background (its answer is only logged);
        skipped and counted when MAX_SHADOWS are already running."""
        if len(self._shadows) >= MAX_SHADOWS:
            self.metrics.shadow.labels(candidate.version, "skipped").inc()
            return
        task = asyncio.get_running_loop().create_task(
            self._run_shadow(candidate, data, request_id, routed_s)
        )
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _run_shadow(
        self, candidate: ServedVersion, data: Any, request_id: str, routed_s: float
    ) -> None:
        started = time.perf_counter()
        table, report = candidate.contract.validate_json(data)
        if not report.ok:
            self.metrics.candidate_refused.inc()
            return
        status, outputs = 200, None
        try:
            outputs = (await candidate.router.predict(table, request_id)).outputs
        except ApiError as exc:
            status = exc.status
        except Exception:
            status = 500
            log.exception("shadow prediction failed", extra={"request_id": request_id})
        # the part of the request both versions share (guards, parsing) counts for both
        elapsed = routed_s + time.perf_counter() - started
        self.metrics.shadow.labels(candidate.version, str(status)).inc()
        if outputs is not None:
            self.metrics.observe_outputs(
                outputs, candidate.bundle.outputs.fields, candidate.version
            )
        if self.predlog:
            self.predlog.record(
                request_id,
                table,
                candidate.null_outputs(table.num_rows) if outputs is None else outputs,
                version=candidate.version,
                latency_ms=elapsed * 1000,
                status=status,
                shadow=True,
            )


def _split_options(config: ServeConfig, steps: list[Any]) -> tuple[Mode, float]:
    """The mode and the starting weight of ``--baseline``; errors for options that need it."""
    mode: Mode = "shadow" if config.shadow else "canary"
    if config.baseline is None:
        for given, option in (
            (config.canary_weight is not None, "--canary-weight"),
            (config.shadow, "--shadow"),
            (config.admin_token is not None, "--admin-token-env"),
        ):
            if given:
                raise InputError(
                    f"{option} needs --baseline BUNDLE: the version beside the candidate"
                )
        return mode, 100.0
    if config.fallback is not None:
        raise InputError(
            "--fallback and --baseline do not combine: with a baseline, a failing candidate "
            "must show in its error rate (roll back to the baseline instead)"
        )
    if config.admin_token is not None and config.admin_token == config.token:
        raise InputError(
            "the admin token is the clients' token: give the admin endpoint its own secret"
        )
    weight = config.canary_weight
    if weight is None:
        if mode == "shadow":
            weight = 100.0
        elif steps:
            weight = float(steps[0].traffic_percent)
        else:
            raise InputError(
                "--baseline needs --canary-weight PERCENT (the candidate's spec has no "
                "rollout.steps to start from)"
            )
    if not 0 <= weight <= 100:
        raise InputError(f"--canary-weight must be in [0, 100], got {weight:g}")
    return mode, weight


#: Shadow predictions running at once at most; past it a request is not shadowed (counted).
MAX_SHADOWS = 64

#: The status logged and counted for a client that disconnected mid-request (nginx's 499).
CLIENT_CLOSED = 499

#: Record indices listed per violation in a 422 body (counts are always totals).
MAX_EXAMPLES = 20


def _count(data: Any) -> int:
    """Records in a parsed body: a list of records, or columns of equal length."""
    if isinstance(data, list):
        return len(data)
    return len(next(iter(data.values()), []))
