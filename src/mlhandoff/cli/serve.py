"""The serving commands: serve, loadtest."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlhandoff.cli._app import EXIT_FAILED, app, console, fail, run
from mlhandoff.errors import InputError


@app.command()
def serve(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory to serve.")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes, each with its own model process (they share idempotency "
            "and rate-limit state through --redis).",
        ),
    ] = 1,
    fallback: Annotated[
        Path | None, typer.Option(help="Bundle answering when the primary fails or is too slow.")
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(
            help="redis://host:port/db for idempotency keys and rate limits shared by replicas."
        ),
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the bearer token.")
    ] = None,
    log_dir: Annotated[
        Path | None, typer.Option(help="Directory for the prediction log (Parquet files).")
    ] = None,
    log_sample_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of requests logged.")
    ] = 1.0,
    log_pii: Annotated[
        str, typer.Option(help="PII fields in the log: redact (null) or hash (HMAC).")
    ] = "redact",
    log_pii_key_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the secret HMAC key for --log-pii hash."),
    ] = None,
    batch_max_rows: Annotated[int, typer.Option(min=1, help="Rows per micro-batch at most.")] = 256,
    batch_max_wait_ms: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="After taking the requests that queued while the model was busy, wait this "
            "long for more before calling it (0: never wait; a lone request is answered at once).",
        ),
    ] = 0.0,
    model_threads: Annotated[
        int,
        typer.Option(
            min=0, help="Native threads (OpenMP/BLAS) per model call; 0: library default."
        ),
    ] = 1,
    model_process: Annotated[
        bool,
        typer.Option(
            help="Run the model in a model process (its own core and GIL; restarted if it "
            "crashes or hangs) or, with --no-model-process, in a thread of the server."
        ),
    ] = True,
    compile_: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile",
            help="Serve the bundle's compiled model when it has one (pack proved it answers "
            "like the model; see reports/compile.json) or, with --no-compile, the model itself.",
        ),
    ] = True,
    model_kill_after_s: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Kill and restart the model process when one call runs this long "
            "(default: 10x api.timeout_ms, at least 5 s).",
        ),
    ] = None,
    body_timeout_s: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="A request body must arrive in full within this many seconds (else 408).",
        ),
    ] = 10.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Serve only a bundle signed (signatures/model.sig) by this key; checked before "
            "anything in it is deserialised.",
        ),
    ] = None,
) -> None:
    """Serve a bundle over HTTP: verifies it, loads and warms the model, enforces its contracts.

    The model runs in a model process that batches the requests queued while it was busy and
    is restarted if it crashes or hangs (--no-model-process: in a thread of the server).

    Endpoints: POST /predict, POST /invocations (MLflow), /v2/... (Open Inference Protocol),
    GET /healthz, /readyz, /metrics, /openapi.json, /docs.
    """
    from mlhandoff.serve import ServeConfig, create_app
    from mlhandoff.serve.server import run as run_server
    from mlhandoff.serve.state import check_redis

    if log_level not in ("debug", "info", "warning", "error"):
        fail(InputError(f"--log-level must be debug, info, warning or error, not '{log_level}'"))
    pii_key = _secret("--log-pii-key-env", log_pii_key_env)
    if log_pii not in ("redact", "hash"):
        fail(InputError(f"--log-pii must be redact or hash, not '{log_pii}'"))
    token = _secret("--token-env", token_env)
    config = ServeConfig(
        bundle=bundle,
        fallback=fallback,
        token=token,
        redis_url=redis,
        log_dir=log_dir,
        log_sample_rate=log_sample_rate,
        log_pii=log_pii,  # type: ignore[arg-type]
        log_pii_key=pii_key,
        log_pii_key_env=log_pii_key_env,
        batch_max_rows=batch_max_rows,
        batch_max_wait_ms=batch_max_wait_ms,
        model_threads=model_threads or None,
        model_process=model_process,
        compiled=compile_,
        model_kill_after_s=model_kill_after_s,
        body_timeout_s=body_timeout_s,
        token_env=token_env,
        log_level=log_level,
        public_keys=tuple(public_key or ()),
    )
    run(lambda: create_app(config))  # verify the bundle and the options before binding
    if redis:
        run(lambda: check_redis(redis))
    where = "a model process" if model_process else "a thread of the server"
    console.print(
        f"serving {bundle} on http://{host}:{port} ({workers} server process(es), the model in "
        f"{where}); docs at /docs",
        style="dim",
        highlight=False,
    )
    run_server(config, host=host, port=port, workers=workers, log_level=log_level)


def _secret(option: str, variable: str | None) -> str | None:
    """The value of the environment variable an option names (secrets never go on the
    command line, where `ps` shows them); a clear error when it is not set."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        fail(InputError(f"{option} {variable}: that environment variable is not set"))
    return value


@app.command()
def loadtest(
    url: Annotated[
        str, typer.Argument(help="Base URL of a running server, e.g. http://127.0.0.1:8080.")
    ],
    bundle: Annotated[
        Path, typer.Option(help="Bundle whose golden set provides the requests and budget.")
    ],
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Requests in flight.")] = 8,
    duration: Annotated[float, typer.Option(min=0.1, max=3600, help="Seconds to run.")] = 10.0,
    max_requests: Annotated[
        int, typer.Option(min=1, help="Stop after this many requests.")
    ] = 1_000_000,
    token_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the bearer token.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Drive a server with golden-set requests; print p50/p95/p99 and throughput against the budget.

    Exits 1 when a budget in the spec is missed or a request failed.
    """
    from mlhandoff.bundle.bundle import open_bundle
    from mlhandoff.serve.loadtest import budget_rows, golden_bodies, run_load

    opened = run(lambda: open_bundle(bundle))
    token = _secret("--token-env", token_env)
    result = asyncio.run(
        run_load(
            url,
            golden_bodies(opened),
            concurrency=concurrency,
            duration_s=duration,
            max_requests=max_requests,
            token=token,
        )
    )
    rows = budget_rows(result, opened.spec)
    failed = (
        any(met is False for *_, met in rows) or result.failures or set(result.statuses) - {200}
    )
    if as_json:
        data = result.to_dict() | {
            "budget": [{"measure": m, "value": v, "budget": b, "met": ok} for m, v, b, ok in rows]
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        table = Table(
            title=f"loadtest {url} — {result.requests} requests, concurrency {concurrency}",
            title_justify="left",
        )
        for column in ("measure", "value", "budget", "status"):
            table.add_column(column)
        for measure, value, limit, met in rows:
            status = "-" if met is None else ("[green]met[/]" if met else "[bold red]missed[/]")
            table.add_row(measure, f"{value:.2f}", "-" if limit is None else f"{limit:g}", status)
        console.print(table)
        console.print(
            f"status codes: {dict(result.statuses)}"
            + (f"; failures: {dict(result.failures)}" if result.failures else "")
        )
    if failed:
        raise typer.Exit(EXIT_FAILED)
