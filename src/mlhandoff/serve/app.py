"""The ASGI app: the routes of one served bundle, each a thin call into ``ModelService``.

Scoring routes run ``ModelService.handle`` with their protocol (``serve/protocols/``), one per
served version (a candidate and its baseline answer in their own versions' shapes); the others
answer health, readiness, metrics, the API's documents and, beside a baseline, the admin
endpoint (``serve/admin.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mlhandoff.render.openapi import openapi_document
from mlhandoff.serve.admin import AdminEndpoint
from mlhandoff.serve.config import ServeConfig
from mlhandoff.serve.errors import ApiError
from mlhandoff.serve.linger import LingeringBody
from mlhandoff.serve.protocols import MlflowProtocol, PredictProtocol, V2Protocol
from mlhandoff.serve.service import ModelService

_DOCS = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><noscript>The API is described in <a href="/openapi.json">/openapi.json</a>.</noscript>
<div id="ui"><p>Loading the API explorer; the raw document is at <a href="/openapi.json">/openapi.json</a>.</p></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>window.onload = () => SwaggerUIBundle({{url: "/openapi.json", dom_id: "#ui"}});</script>
</body></html>"""


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def create_app(config: ServeConfig) -> Starlette:
    """The Starlette app serving ``config.bundle``; raises HandoffError for an unusable bundle."""
    service = ModelService(config)
    spec = service.spec
    versions = service.router.versions
    predict_protocols = {v.version: PredictProtocol(v.rows, v.info()) for v in versions}
    mlflow_protocols = {v.version: MlflowProtocol(v.rows) for v in versions}
    v2_protocols = {
        v.version: V2Protocol(v.bundle.spec, v.bundle.outputs, v.bundle.record.model.flavor)
        for v in versions
    }
    v2_protocol = v2_protocols[spec.version]
    openapi_body = orjson.dumps(openapi_document(spec, service.bundle.outputs))

    async def predict(request: Request) -> Response:
        return await service.handle(request, predict_protocols)

    async def invocations(request: Request) -> Response:
        return await service.handle(request, mlflow_protocols)

    async def v2_infer(request: Request) -> Response:
        unknown = v2_protocol.unknown_model(request.path_params["name"], infer=True)
        if unknown is not None:
            return _json(unknown.body("-"), 404)
        return await service.handle(request, v2_protocols)

    async def v2_model(request: Request) -> Response:
        unknown = v2_protocol.unknown_model(request.path_params["name"], infer=False)
        if unknown is not None:
            return _json(unknown.body("-"), 404)
        return _json(v2_protocol.metadata())

    async def live(request: Request) -> Response:
        return _json({"status": "ok"})

    async def ready(request: Request) -> Response:
        status = service.router.readiness()
        if status in ("ready", "degraded"):
            body = {"status": status, "model": service.model_info()}
            if service.router.baseline is not None:
                body["baseline"] = service.router.baseline.info()
            return _json(body)
        detail = {"status": status}
        if service.router.load_error:
            detail["error"] = service.router.load_error
        return _json(detail, 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return Response(openapi_body, media_type="application/json")

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
        response = _json(error.body(request.headers.get(spec.api.request_id_header, "-")), status)
        if isinstance(exc, HTTPException) and exc.headers:  # a 405 names the allowed methods
            response.headers.update(exc.headers)
        return response

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
    if service.router.baseline is not None:
        admin = AdminEndpoint(service.router, config.admin_token, spec.api.request_id_header)
        routes += admin.routes()
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
        middleware=[Middleware(LingeringBody)],
    )
    app.state.service = service
    return app


__all__ = ["create_app"]
