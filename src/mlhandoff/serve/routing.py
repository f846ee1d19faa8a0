"""Which model answers a request, and where it runs.

``ModelRouter`` loads the primary (and the fallback) in the background and routes each request:
the primary; the fallback when the primary raises, exceeds ``api.timeout_ms``, restarts after a
crash, or its circuit breaker is open. The service only uses the ``Router`` interface below
(start, stop, readiness, check_ready, predict), so that another policy — a baseline and a
candidate for canary or shadow traffic — can take this one's place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.errors import ModelCrashed, ModelExpired, ModelFailed
from mlhandoff.serve.config import ServeConfig
from mlhandoff.serve.errors import ApiError
from mlhandoff.serve.fallback import CircuitBreaker
from mlhandoff.serve.metrics import ServerMetrics
from mlhandoff.serve.runners import ProcessRunner, Runner, RunOptions, ThreadRunner

log = logging.getLogger("mlhandoff.serve")


@dataclass(frozen=True)
class Routed:
    """The outputs for a request, and the label of the model that answered when it was not the
    primary (the ``X-Model-Fallback`` header)."""

    outputs: pa.Table
    answered_by: str | None = None


class Router(Protocol):
    load_error: str | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def readiness(self) -> str: ...

    def check_ready(self) -> None: ...

    async def predict(self, table: pa.Table, request_id: str) -> Routed: ...


class ServedModel:
    """A bundle being served, and where its model runs (a model process or a thread)."""

    def __init__(self, bundle: Bundle, metrics: ServerMetrics, config: ServeConfig) -> None:
        spec = bundle.spec
        self.label = f"{spec.name}-{spec.version}"
        self.runner: Runner
        options = RunOptions(
            threads=config.model_threads,
            max_rows=config.batch_max_rows,
            max_wait_s=config.batch_max_wait_ms / 1000,
            on_batch=metrics.batch_rows.observe,
            on_restart=metrics.model_restarts.labels(self.label).inc,
            compiled=config.compiled,
        )
        if config.model_process:
            kill_after = config.model_kill_after_s or max(5.0, 10 * spec.api.timeout_ms / 1000)
            secrets = tuple(
                name
                for name in (config.token_env, config.log_pii_key_env, config.admin_token_env)
                if name
            )
            self.runner = ProcessRunner(
                bundle.root,
                options,
                kill_after_s=kill_after,
                log_level=config.log_level,
                hidden_env=secrets,
            )
        else:
            self.runner = ThreadRunner(bundle.root, options)


class ModelRouter:
    """The primary model, and the fallback behind a circuit breaker."""

    def __init__(
        self,
        primary: Bundle,
        fallback: Bundle | None,
        metrics: ServerMetrics,
        config: ServeConfig,
    ) -> None:
        self._bundles = (primary, fallback)
        self._metrics = metrics
        self._config = config
        self._timeout_ms = primary.spec.api.timeout_ms
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)
        self.primary: ServedModel | None = None
        self.fallback: ServedModel | None = None
        self.ready = False
        self.load_error: str | None = None
        self._loading: asyncio.Task[None] | None = None
        self._models: list[ServedModel] = []

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loading = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        """Load and warm in the background so /healthz answers and /readyz says 503 meanwhile."""
        primary_bundle, fallback_bundle = self._bundles
        try:
            primary = ServedModel(primary_bundle, self._metrics, self._config)
            self._models.append(primary)
            await primary.runner.start()
            fallback = None
            if fallback_bundle is not None:
                fallback = ServedModel(fallback_bundle, self._metrics, self._config)
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
        self._metrics.ready.set(1)
        log.info("ready: %s (%s)", primary.label, primary_bundle.digest)

    async def stop(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        for model in self._models:  # also those still loading when the server stopped
            await model.runner.stop()

    def readiness(self) -> str:
        """ready; degraded (the primary's model process restarts, the fallback answers);
        restarting (no fallback); loading; failed (see load_error). Ready and degraded serve."""
        if self.load_error:
            return "failed"
        if not self.ready or self.primary is None:
            return "loading"
        if self.primary.runner.ready:
            return "ready"
        return "degraded" if self.fallback and self.fallback.runner.ready else "restarting"

    def check_ready(self) -> None:
        """503 unless a model can answer now."""
        if not self.ready or self.primary is None:
            raise ApiError(
                503,
                "the model failed to load" if self.load_error else "the model is still loading",
            )
        if not self.primary.runner.ready and self.fallback is None:
            raise ApiError(
                503,
                "the model process is restarting after a crash; retry shortly",
                headers={"Retry-After": "1"},
            )

    # --- routing -----------------------------------------------------------------------------

    async def predict(self, table: pa.Table, request_id: str) -> Routed:
        assert self.primary is not None
        reason = "circuit_open"
        if self.fallback is not None and not self.primary.runner.ready:
            reason = "restarting"  # not a failure of the model: no breaker count, no error log
        elif self.fallback is None or self.breaker.allow():
            try:
                outputs = await self._call(self.primary, table)
                self.breaker.record(True)
                return Routed(outputs)
            except TimeoutError:
                self.breaker.record(False)
                reason = "timeout"
                if self.fallback is None:
                    raise ApiError(
                        504, f"the model took longer than its {self._timeout_ms:g} ms budget"
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
        self._metrics.fallbacks.labels(reason).inc()
        if not self.fallback.runner.ready:
            raise ApiError(
                503,
                "the model processes are restarting after a crash; retry shortly",
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
        return Routed(outputs, self.fallback.label)

    async def _call(self, model: ServedModel, table: pa.Table) -> pa.Table:
        """The model's outputs within the time budget; TimeoutError past it."""
        budget = self._timeout_ms / 1000
        deadline = time.monotonic() + budget
        try:
            # asyncio.timeout, not wait_for: no task of its own and no extra loop turn per call
            async with asyncio.timeout(budget):
                return await model.runner.predict(table, deadline)
        except ModelExpired:  # dropped unanswered: the budget ran out while the model was busy
            raise TimeoutError from None


def _log_model_failure(which: str, exc: BaseException, request_id: str) -> None:
    """Exception type and stack, never its message: models put input values (PII) in messages."""
    if isinstance(exc, ModelFailed):
        kind, stack = exc.type_name, exc.stack
    else:
        kind, stack = type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__))
    if isinstance(exc, ModelCrashed):  # our own words (exit status, time limit), no model text
        kind = f"{kind}: {exc}"
    log.error("%s failed: %s", which, kind, extra={"request_id": request_id, "stack": stack})
