"""Serving benchmark (issues 5, 15): `mlhandoff serve` against MLflow and BentoML on the example model.

One run: the example's HistGradientBoosting pipeline, packed into a bundle (with its compiled
form); raw in-process one-row ``predict_proba`` of the pipeline and one-row predict of the
compiled form; rows/s of a 100k-row batch through ``Bundle.predict`` against the pipeline; then
each server on 127.0.0.1 driven by wrk with single-record requests (the bundle's 200 golden
rows in turn) at concurrency 1 and 16, 20 s each after a 3 s warm-up, a bare ASGI app on
uvicorn among them (the ceiling of the server's own path); a table with req/s, p50, p99 and
errors, the ratios against the bars, the load average, the peers' versions, and the status
each server gives five bad requests.

    bash bench/setup_serve.sh                 # once: peer venvs under bench/.venvs/
    .venv/bin/python bench/serve.py           # the comparison (about 4 minutes)
    .venv/bin/python bench/serve.py --profile # ... plus py-spy on mlhandoff serve at c=16
    .venv/bin/python bench/serve.py --soak 600 [--soak-rps 200]   # fixed-rate soak, RSS
    .venv/bin/python bench/serve.py --drift-cost [--rounds 6]      # live drift on vs off, c=16

Bars: at c=1 mlhandoff p50 <= the pipeline's raw predict_proba and <= the raw compiled predict
+ 1 ms; at c=16 throughput >= 3x BentoML with batching and >= 10x MLflow, p99 <= 50 ms; zero
errors. Soak: zero errors, RSS growth under 10 %. Live drift (the drift gauges on /metrics)
costs <= 5 % of the c=16 throughput.

The bench bundle is the example spec with one change: ``api.rate_limit_rps`` raised from 500
to 1e6, so that the limiter still runs on every request but does not cap the throughput being
measured (all load comes from one client address). Work files live in bench/out/serve/.
Every server runs in its own process group and is killed at the end, even on error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENVS = BENCH / ".venvs"
PEERS = BENCH / "serve_peers"
OUT = BENCH / "out" / "serve"
EXAMPLE = ROOT / "examples" / "risky_transactions"
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
BUNDLE_NAME = "risky-transactions-1.0.0"
HOST = "127.0.0.1"
WRK = shutil.which("wrk") or "/usr/bin/wrk"

#: Servers run only when named in --only.
OPTIONAL = {"mlhandoff-w2", "mlhandoff-wait2ms", "mlhandoff-original"}
#: The 100k-row batch through Bundle.predict and the pipeline.
BATCH_ROWS = 100_000

BAR_C1_OVER_RAW_MS = 1.0
BAR_VS_BENTO_BATCHED = 3.0
BAR_VS_MLFLOW = 10.0
BAR_P99_C16_MS = 50.0
BAR_SOAK_RSS_GROWTH = 0.10
BAR_DRIFT_COST = 0.05


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the model and the bundle ----------------------------------------------------------------


def prepare_bundle(work: Path) -> Path:
    """The bench bundle under ``work``: reuses it, else the example's trained model, else trains."""
    bundle = work / "work" / "dist" / BUNDLE_NAME
    if (bundle / "MANIFEST.json").exists():
        log(f"reusing {bundle.relative_to(ROOT)}")
        return bundle
    work.mkdir(parents=True, exist_ok=True)
    for name in ("handoff.yaml", "train.py", "generate.py"):
        shutil.copy2(EXAMPLE / name, work / name)
    data = work / "work"
    files = ("model.skops", "train.parquet", "test.parquet", "sample.parquet")
    if not all((data / f).exists() for f in files):
        example_work = EXAMPLE / "work"
        if all((example_work / f).exists() for f in files):
            log(
                "copying the example's trained model and data from examples/risky_transactions/work"
            )
            data.mkdir(exist_ok=True)
            for f in files:
                shutil.copy2(example_work / f, data / f)
        else:
            log("generating the example data and training the model (about a minute)")
            run = [str(PROJECT_PY)]
            subprocess.run(
                [*run, "generate.py", "--rows", "60000", "--seed", "42", "--out", "work"],
                cwd=work,
                check=True,
                timeout=300,
            )
            subprocess.run(
                [
                    *run,
                    "train.py",
                    "--train",
                    "work/train.parquet",
                    "--test",
                    "work/test.parquet",
                    "--out",
                    "work/model.skops",
                    "--seed",
                    "42",
                ],
                cwd=work,
                check=True,
                timeout=900,
            )
    from mlhandoff.spec import dump_spec, load_spec

    spec = load_spec(
        work / "handoff.yaml"
    )  # the project's loader: comments and layout do not matter
    spec.api.rate_limit_rps = 1_000_000
    spec.security.keyring = None  # the bench measures serving, not sign-offs: no keys to make
    (work / "handoff.bench.yaml").write_text(dump_spec(spec))
    log("packing the bench bundle")
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "mlhandoff"),
            "pack",
            "handoff.bench.yaml",
            "--out",
            "work/dist",
            "--force",
        ],
        cwd=work,
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )
    return bundle


def golden_records(bundle: Path) -> list[dict[str, Any]]:
    """The load test's own records (one per golden row), so both send the same bodies."""
    import mlhandoff
    from mlhandoff.serve.loadtest import golden_records as records

    return records(mlhandoff.open_bundle(bundle))


def measure_raw(bundle: Path, calls: int = 1000) -> tuple[Callable[[], float], dict[str, Any]]:
    """Median one-row latencies in this process: the bare pipeline, and mlhandoff's layers."""
    import pyarrow.parquet as pq
    import skops.io as sio

    import mlhandoff
    from mlhandoff.contract.outputs import name_outputs
    from mlhandoff.serve import ModelService, ServeConfig
    from mlhandoff.serve.protocols import PredictProtocol

    path = bundle / "model" / "model.skops"
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    golden = pq.read_table(bundle / "data" / "golden_inputs.parquet")
    frame = golden.to_pandas()
    frames = [frame.iloc[[i]] for i in range(len(frame))]
    opened = mlhandoff.open_bundle(bundle)
    predictor = opened.predictor(compiled=False)
    compiled = opened.predictor(
        compiled=True
    )  # the model itself when the bundle has no compiled form
    outputs = opened.outputs
    tables = [golden.slice(i, 1) for i in range(golden.num_rows)]
    service = ModelService(ServeConfig(bundle=bundle))
    contract = service.contract  # the server's own validator
    protocol = PredictProtocol(service.rows, service.model_info())
    records = golden_records(bundle)
    bodies = [json.dumps(r).encode() for r in records]
    import orjson

    def timed(fn: Callable[[int], object], count: int = calls) -> list[float]:
        for i in range(min(100, count)):
            fn(i)
        times = []
        for i in range(count):
            start = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - start) * 1000)
        return times

    from threadpoolctl import threadpool_limits

    n = len(frames)
    # As a user calls it (OpenMP on every core), and on one thread, which on 2 shared cores is
    # much faster for one row; the bar is held against the faster of the two.
    # (fewer calls: on a loaded machine OpenMP's spinning threads make each call far slower)
    raw_default = timed(lambda i: model.predict_proba(frames[i % n]), min(calls, 200))
    with threadpool_limits(limits=1):
        cpu_start = time.process_time()
        raw = timed(lambda i: model.predict_proba(frames[i % n]))
        raw_cpu_ms = 1000 * (time.process_time() - cpu_start) / (calls + 100)
        layered = timed(lambda i: name_outputs(predictor.predict(tables[i % n]), outputs))
        raw_compiled = timed(lambda i: compiled.predict(tables[i % n]))
        layered_compiled = timed(lambda i: opened.predict_table(tables[i % n]))

    def parse_validate(i: int) -> object:
        table, _ = contract.validate_json(protocol.parse(orjson.loads(bodies[i % n])))
        return contract.normalize(table)

    validate = timed(parse_validate)
    batch_times = []
    with threadpool_limits(limits=1):
        for _ in range(20):
            start = time.perf_counter()
            model.predict_proba(frame)
            batch_times.append((time.perf_counter() - start) * 1000)
    best = raw if statistics.median(raw) <= statistics.median(raw_default) else raw_default

    def again(count: int = 500) -> tuple[float, float]:
        """One-thread one-row p50s now, the pipeline's and the compiled form's: the machine is
        shared, so they are re-taken around runs."""
        with threadpool_limits(limits=1):
            original = timed(lambda i: model.predict_proba(frames[i % n]))[:count]
            fast = timed(lambda i: compiled.predict(tables[i % n]))[:count]
        return statistics.median(original), statistics.median(fast)

    return again, {
        "raw_predict_p50_ms": statistics.median(best),
        "raw_predict_p99_ms": _pct(best, 99),
        "raw_predict_default_threads_p50_ms": statistics.median(raw_default),
        "raw_predict_one_thread_p50_ms": statistics.median(raw),
        "raw_predict_one_thread_cpu_ms": raw_cpu_ms,
        "mlhandoff_predictor_p50_ms": statistics.median(layered),
        "raw_compiled_p50_ms": statistics.median(raw_compiled),
        "raw_compiled_p99_ms": _pct(raw_compiled, 99),
        "compiled_form": opened.compiled,
        "mlhandoff_predict_table_compiled_p50_ms": statistics.median(layered_compiled),
        "parse_validate_p50_ms": statistics.median(validate),
        "raw_predict_200_rows_ms": statistics.median(batch_times),
        "calls": calls,
    }


def measure_batch(bundle: Path, rows: int = BATCH_ROWS) -> dict[str, Any]:
    """Rows/s for one ``rows``-row batch (the eval sample repeated): ``Bundle.predict`` (the
    compiled form, contract check included) against the pipeline's own ``predict_proba`` (default
    threads, as a user calls it; the frame already built), the better of two each."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import skops.io as sio

    import mlhandoff

    opened = mlhandoff.open_bundle(bundle)
    sample = pq.read_table(bundle / "data" / "eval_sample.parquet")
    sample = sample.select(
        [f for f in opened.spec.data_contract.fields if f in sample.column_names]
    )
    table = pa.concat_tables([sample] * (rows // sample.num_rows + 1)).slice(0, rows)
    for name, spec in opened.spec.data_contract.fields.items():
        if spec.id and name in table.column_names:  # ids are unique within a batch
            ids = pa.array([f"row-{i}" for i in range(rows)], table.schema.field(name).type)
            table = table.set_column(table.column_names.index(name), name, ids)
    frame = table.to_pandas()
    path = bundle / "model" / "model.skops"
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(2):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return rows / min(times)

    return {
        "rows": rows,
        "bundle_predict_rows_per_s": best(lambda: opened.predict(table)),
        "bundle_predict_unchecked_rows_per_s": best(lambda: opened.predict(table, validate=False)),
        "pipeline_predict_proba_rows_per_s": best(lambda: model.predict_proba(frame)),
    }


def _pct(values: list[float], q: float) -> float:
    """The load test's percentile (interpolated), so bench and loadtest report the same p99."""
    from mlhandoff.serve.loadtest import percentile

    return percentile(values, q)


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    command: list[str]
    path: str  # the scoring route
    wrap: Callable[[dict[str, Any]], Any]  # one record -> the request body
    ready_path: str
    port: int
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    ready_streak: int = 1  # consecutive ready answers (several workers answer in turn)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout_s: float = 180) -> None:
        self.log_path = OUT / "logs" / f"{self.name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log_path.open("wb")
        log(f"starting {self.name} on {self.url}")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        streak = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            ready = False
            with contextlib.suppress(OSError, urllib.error.URLError):
                ready = http("GET", self.url + self.ready_path, timeout=2)[0] == 200
            streak = streak + 1 if ready else 0
            if streak >= self.ready_streak:
                return
            time.sleep(0.05 if ready else 0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        tree = descendants(process.pid)  # BentoML's workers start process groups of their own
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        log(f"stopped {self.name}")

    def body(self, record: dict[str, Any]) -> bytes:
        return json.dumps(self.wrap(record)).encode()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def server_cpu(server: Server) -> float:
    if server.process is None:
        return 0.0
    return cpu_seconds([server.process.pid, *descendants(server.process.pid)])


def batch_counters(server: Server) -> tuple[float, float]:
    """(rows, model calls) so far, from mlhandoff's /metrics."""
    from mlhandoff.serve.metrics import sample_values

    _, text = http("GET", server.url + "/metrics")
    values = sample_values(
        text.decode(), ("mlhandoff_batch_rows_sum", "mlhandoff_batch_rows_count")
    )
    return values["mlhandoff_batch_rows_sum"], values["mlhandoff_batch_rows_count"]


def http(
    method: str, url: str, body: bytes | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _mlhandoff(name: str, bundle: Path, *options: str, ready_streak: int = 1) -> Server:
    command = [str(ROOT / ".venv" / "bin" / "mlhandoff"), "serve", str(bundle)]
    return Server(
        name,
        [*command, "--host", HOST, "--port", "{port}", *options],
        "/predict",
        lambda r: r,
        "/readyz",
        0,
        ready_streak=ready_streak,
    )


def make_servers(bundle: Path, only: set[str] | None, peer_threads: bool = True) -> list[Server]:
    model = bundle / "model" / "model.skops"
    # mlhandoff serve runs the model on one native thread (--model-threads 1, its default); the
    # peers get the same through the environment. Left at the library default, the OpenMP pool
    # of HistGradientBoosting stalls for seconds on 2 shared cores (seen with BentoML).
    threads = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"} if peer_threads else {}
    servers: list[Server] = [
        _mlhandoff("mlhandoff", bundle),
        _mlhandoff("mlhandoff-w2", bundle, "--workers", "2", ready_streak=20),
        _mlhandoff("mlhandoff-thread", bundle, "--no-model-process"),
        _mlhandoff("mlhandoff-original", bundle, "--no-compile"),
        _mlhandoff("mlhandoff-wait2ms", bundle, "--batch-max-wait-ms", "2"),
    ]
    servers.append(
        Server(
            "bare-asgi",
            [
                *(str(PROJECT_PY), "-m", "uvicorn", "bare_asgi:app", "--host", HOST),
                *("--port", "{port}", "--no-access-log", "--log-level", "warning"),
                *("--loop", "uvloop", "--http", "httptools"),
            ],
            "/predict",
            lambda r: r,
            "/",
            0,
            cwd=PEERS,
        )
    )
    mlflow_py = VENVS / "mlflow" / "bin" / "python"
    if mlflow_py.exists():
        mlflow_dir = OUT / "mlflow_model"
        if not (mlflow_dir / "MLmodel").exists():
            log("saving the model as an MLflow model")
            subprocess.run(
                [
                    str(mlflow_py),
                    str(PEERS / "mlflow_model.py"),
                    str(model),
                    str(bundle / "data" / "golden_inputs.parquet"),
                    str(mlflow_dir),
                ],
                check=True,
                timeout=300,
            )
        servers.append(
            Server(
                "mlflow",
                [
                    str(VENVS / "mlflow" / "bin" / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    str(mlflow_dir),
                    "--env-manager",
                    "local",
                    "-h",
                    HOST,
                    "-p",
                    "{port}",
                ],
                "/invocations",
                lambda r: {"dataframe_records": [r]},
                "/ping",
                0,
                env={
                    **threads,
                    "MLFLOW_TRACKING_URI": f"file://{OUT / 'mlruns'}",
                    "PATH": f"{VENVS / 'mlflow' / 'bin'}:{os.environ.get('PATH', '')}",
                },
            )
        )
    else:
        log("no bench/.venvs/mlflow: run bench/setup_serve.sh; skipping MLflow")
    bento = VENVS / "bentoml" / "bin" / "bentoml"
    if bento.exists():
        env = {
            **threads,
            "BENCH_SKOPS_MODEL": str(model),
            "BENTOML_DO_NOT_TRACK": "True",
            "BENTOML_HOME": str(OUT / "bentoml_home"),
            "PATH": f"{VENVS / 'bentoml' / 'bin'}:{os.environ.get('PATH', '')}",
        }
        for name, cls in (("bentoml", "RiskyPlain"), ("bentoml-batched", "RiskyBatched")):
            servers.append(
                Server(
                    name,
                    [
                        str(bento),
                        "serve",
                        f"bento_service:{cls}",
                        "--host",
                        HOST,
                        "--port",
                        "{port}",
                    ],
                    "/predict",
                    lambda r: {"records": [r]},
                    "/readyz",
                    0,
                    cwd=PEERS,
                    env=env,
                )
            )
    else:
        log("no bench/.venvs/bentoml: run bench/setup_serve.sh; skipping BentoML")
    servers = [s for s in servers if (s.name in only if only else s.name not in OPTIONAL)]
    for server in servers:
        server.port = free_port()
        server.command = [a.replace("{port}", str(server.port)) for a in server.command]
    return servers


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- load with wrk -----------------------------------------------------------------------------

_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
%s
}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, "%s", nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def wrk_script(server: Server, records: list[dict[str, Any]]) -> Path:
    bodies = ",\n".join(f"[==[{server.body(r).decode()}]==]" for r in records)
    path = OUT / "lua" / f"{server.name}.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_LUA % (bodies, server.path))
    return path


@dataclass
class LoadRun:
    server: str
    concurrency: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    requests: int
    error_detail: dict[str, int]
    cpu_ms_per_request: float | None = None  # the server's processes, user + system
    mean_batch_rows: float | None = None  # mlhandoff: rows per model call


def wrk(server: Server, script: Path, concurrency: int, seconds: float) -> LoadRun:
    command = [
        WRK,
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        server.url + server.path,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    (OUT / "logs" / f"wrk-{server.name}-c{concurrency}.txt").write_text(
        result.stdout + result.stderr
    )
    match = re.search(r"WRKJSON (\{.*\})", result.stdout)
    if not match:
        raise RuntimeError(f"wrk gave no summary: {result.stdout[-500:]} {result.stderr[-500:]}")
    data = json.loads(match.group(1))
    detail = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return LoadRun(
        server=server.name,
        concurrency=concurrency,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=sum(detail.values()),
        requests=data["requests"],
        error_detail=detail,
    )


# --- bad requests ------------------------------------------------------------------------------


def bad_requests(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def changed(**updates: Any) -> dict[str, Any]:
        return {**record, **updates}

    return {
        "valid record": record,
        "null numeric (amount_eur)": changed(amount_eur=None),
        "out of range (amount_eur 99999 > 5000)": changed(amount_eur=99999.0),
        "unseen category (merchant_category 'casino')": changed(merchant_category="casino"),
        "extra column (promo_code)": changed(promo_code="X1"),
        "string in numeric (amount_eur 'abc')": changed(amount_eur="abc"),
    }


def probe(server: Server, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    answers = {}
    for case, body in bad_requests(record).items():
        try:
            status, content = http("POST", server.url + server.path, server.body(body))
        except (OSError, urllib.error.URLError) as exc:
            status, content = 0, str(exc).encode()
        answers[case] = {"status": status, "body": content[:300].decode("utf-8", "replace")}
    return answers


# --- versions ----------------------------------------------------------------------------------

_VERSIONS = """
import importlib.metadata as m, json, platform
names = %r
out = {"python": platform.python_version()}
for n in names:
    try:
        out[n] = m.version(n)
    except m.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def versions() -> dict[str, dict[str, str]]:
    envs = {
        "mlhandoff (.venv)": (
            PROJECT_PY,
            ["mlhandoff", "uvicorn", "starlette", "uvloop", "httptools", "orjson", "pyarrow"],
        ),
        "mlflow (bench/.venvs/mlflow)": (
            VENVS / "mlflow" / "bin" / "python",
            ["mlflow", "uvicorn", "fastapi", "flask"],
        ),
        "bentoml (bench/.venvs/bentoml)": (
            VENVS / "bentoml" / "bin" / "python",
            ["bentoml", "uvicorn", "starlette", "pydantic"],
        ),
    }
    common = ["scikit-learn", "skops", "pandas", "numpy", "scipy"]
    found: dict[str, dict[str, str]] = {}
    for label, (python, names) in envs.items():
        if not python.exists():
            continue
        out = subprocess.run(
            [str(python), "-c", _VERSIONS % (names + common)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        found[label] = (
            json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-200:]}
        )
    wrk_version = subprocess.run([WRK, "--version"], capture_output=True, text=True).stdout
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "src/mlhandoff"],
        capture_output=True,
        text=True,
    ).stdout.split()
    found["mlhandoff (.venv)"]["source"] = f"{head}{' + uncommitted src changes' if dirty else ''}"
    found["machine"] = {
        "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
        "wrk": wrk_version.split("[")[0].replace("wrk", "").strip(),
    }
    return found


# --- profiling ---------------------------------------------------------------------------------


def profile(server: Server, script: Path, concurrency: int, seconds: float = 10) -> dict[str, Any]:
    """py-spy on the server during a wrk run; the hottest functions, inclusive and self."""
    spy = VENVS / "tools" / "bin" / "py-spy"
    if not spy.exists() or server.process is None:
        return {"skipped": "no bench/.venvs/tools/bin/py-spy (bash bench/setup_serve.sh tools)"}
    raw = OUT / f"profile-mlhandoff-c{concurrency}.txt"
    load = subprocess.Popen(
        [
            WRK,
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds + 6:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            server.url + server.path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        subprocess.run(
            [
                str(spy),
                "record",
                "-d",
                f"{seconds:g}",
                "-r",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "-o",
                str(raw),
                "-p",
                str(server.process.pid),
            ],
            check=True,
            timeout=seconds + 60,
            capture_output=True,
        )
        subprocess.run(
            [
                str(spy),
                "record",
                "-d",
                "5",
                "-r",
                "200",
                "--nonblocking",
                "-o",
                str(OUT / f"profile-mlhandoff-c{concurrency}.svg"),
                "-p",
                str(server.process.pid),
            ],
            timeout=60,
            capture_output=True,
        )
    finally:
        load.wait(seconds + 30)
    return summarize_profile(raw)


def summarize_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        threads[frames[0]] += count
        frames = [
            re.sub(r" \(/[^)]*/(site-packages|src|lib/python3\.\d+)/", " (", f) for f in frames[1:]
        ]
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    share = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "threads": {k: share(v) for k, v in threads.most_common(8)},
        "inclusive_pct": {k: share(v) for k, v in inclusive.most_common(top)},
        "self_pct": {k: share(v) for k, v in own.most_common(top)},
    }


# --- the comparison ----------------------------------------------------------------------------


def compare(args: argparse.Namespace) -> dict[str, Any]:
    bundle = prepare_bundle(OUT / "example")
    records = golden_records(bundle)
    log("measuring raw in-process predict")
    again, raw = measure_raw(bundle)
    log(
        f"raw one-row predict_proba p50 {raw['raw_predict_p50_ms']:.3f} ms, compiled predict p50 "
        f"{raw['raw_compiled_p50_ms']:.3f} ms"
    )
    results: dict[str, Any] = {"raw": raw, "runs": [], "bad_requests": {}, "profile": None}
    results["load_average"] = {"start": os.getloadavg()}
    log(f"a {args.batch_rows}-row batch: Bundle.predict against the pipeline")
    results["batch"] = measure_batch(bundle, args.batch_rows)
    only = set(args.only.split(",")) if args.only else None
    results["peer_threads"] = "OMP_NUM_THREADS=1" if args.peer_threads else "library default"
    for server in make_servers(bundle, only, args.peer_threads):
        with running(server):
            status, content = http("POST", server.url + server.path, server.body(records[0]))
            if status != 200:
                raise RuntimeError(
                    f"{server.name}: a valid request got {status}: {content[:300]!r}"
                )
            log(f"{server.name} answers: {content[:120].decode()}")
            script = wrk_script(server, records)
            for concurrency in args.concurrency:
                wrk(server, script, concurrency, args.warmup)
                around = server.name == "mlhandoff" and concurrency == 1
                if around:
                    raw["raw_before_c1_p50_ms"], raw["raw_compiled_before_c1_p50_ms"] = again()
                cpu0 = server_cpu(server)
                single = server.name.startswith("mlhandoff") and server.name != "mlhandoff-w2"
                rows0, calls0 = batch_counters(server) if single else (0, 0)
                run = wrk(server, script, concurrency, args.duration)
                run.cpu_ms_per_request = 1000 * (server_cpu(server) - cpu0) / max(1, run.requests)
                if single:
                    rows1, calls1 = batch_counters(server)
                    run.mean_batch_rows = (rows1 - rows0) / max(1.0, calls1 - calls0)
                if around:
                    raw["raw_after_c1_p50_ms"], raw["raw_compiled_after_c1_p50_ms"] = again()
                results["runs"].append(run.__dict__)
                log(
                    f"{server.name} c={concurrency}: {run.rps:.0f} req/s, p50 {run.p50_ms:.2f} ms, "
                    f"p99 {run.p99_ms:.2f} ms, errors {run.errors}"
                )
            if args.profile and server.name == "mlhandoff":
                results["profile"] = {}
                for concurrency in (1, 16):
                    log(f"profiling mlhandoff serve under c={concurrency} with py-spy")
                    results["profile"][f"c={concurrency}"] = profile(server, script, concurrency)
            if server.name != "bare-asgi":  # answers 200 to anything
                bad_record = next(r for r in records if r.get("distance_from_home_km") is not None)
                results["bad_requests"][server.name] = probe(server, bad_record)
    results["load_average"]["end"] = os.getloadavg()
    results["versions"] = versions()
    return results


def raw_baseline(raw: dict[str, Any], form: str = "predict") -> float:
    """The lowest one-row p50 taken of the pipeline (``form="predict"``) or of the compiled form
    (``"compiled"``), at the start and just before and after mlhandoff's c=1 run: the strictest
    reading of 'raw predict' on a noisy shared machine."""
    keys = (f"raw_{form}_p50_ms", f"raw_{form}_before_c1_p50_ms", f"raw_{form}_after_c1_p50_ms")
    if form == "predict":
        keys = ("raw_predict_p50_ms", "raw_before_c1_p50_ms", "raw_after_c1_p50_ms")
    return min(raw[k] for k in keys if k in raw)


def bars(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    runs = {(r["server"], r["concurrency"]): r for r in results["runs"]}
    raw = raw_baseline(results["raw"])
    fast = raw_baseline(results["raw"], "compiled")
    rows: list[tuple[str, str, str, bool | None]] = []
    ours1, ours16 = runs.get(("mlhandoff", 1)), runs.get(("mlhandoff", 16))
    if ours1:
        p50 = ours1["p50_ms"]
        rows.append(
            (
                "c=1 p50 <= raw predict_proba of the pipeline",
                f"{p50:.2f} ms (raw {raw:.2f} ms, {p50 / raw:.2f}x)",
                f"<= {raw:.2f} ms",
                p50 <= raw,
            )
        )
        rows.append(
            (
                "c=1 p50 <= raw compiled predict + 1 ms",
                f"{p50:.2f} ms (compiled {fast:.3f} ms, +{p50 - fast:.2f} ms)",
                f"<= {fast + BAR_C1_OVER_RAW_MS:.2f} ms",
                p50 <= fast + BAR_C1_OVER_RAW_MS,
            )
        )
        rows.append(("c=1 errors", str(ours1["errors"]), "0", ours1["errors"] == 0))
    if ours16:
        for peer, bar in (("bentoml-batched", BAR_VS_BENTO_BATCHED), ("mlflow", BAR_VS_MLFLOW)):
            theirs = runs.get((peer, 16))
            if theirs:
                ratio = ours16["rps"] / theirs["rps"] if theirs["rps"] else float("inf")
                rows.append(
                    (
                        f"c=16 throughput vs {peer}",
                        f"{ratio:.2f}x ({ours16['rps']:.0f} / {theirs['rps']:.0f} req/s)",
                        f">= {bar:g}x",
                        ratio >= bar,
                    )
                )
        rows.append(
            (
                "c=16 p99",
                f"{ours16['p99_ms']:.2f} ms",
                f"<= {BAR_P99_C16_MS:g} ms",
                ours16["p99_ms"] <= BAR_P99_C16_MS,
            )
        )
        rows.append(("c=16 errors", str(ours16["errors"]), "0", ours16["errors"] == 0))
        bare = runs.get(("bare-asgi", 16))
        if bare and bare["rps"]:
            rows.append(
                (
                    "c=16 throughput vs bare ASGI (the ceiling)",
                    f"{ours16['rps'] / bare['rps']:.2f}x ({ours16['rps']:.0f} / {bare['rps']:.0f})",
                    "-",
                    None,
                )
            )
    batch = results.get("batch")
    if batch:
        ratio = batch["bundle_predict_rows_per_s"] / batch["pipeline_predict_proba_rows_per_s"]
        rows.append(
            (
                f"{batch['rows']}-row batch: Bundle.predict vs the pipeline",
                f"{ratio:.2f}x ({batch['bundle_predict_rows_per_s']:,.0f} / "
                f"{batch['pipeline_predict_proba_rows_per_s']:,.0f} rows/s)",
                "-",
                None,
            )
        )
    return rows


def report(results: dict[str, Any]) -> str:
    raw = results["raw"]
    lines = [
        f"raw in-process one-row predict_proba: p50 {raw['raw_predict_p50_ms']:.3f} ms, "
        f"p99 {raw['raw_predict_p99_ms']:.3f} ms ({raw['calls']} calls; default threads p50 "
        f"{raw['raw_predict_default_threads_p50_ms']:.3f} ms, one thread p50 "
        f"{raw['raw_predict_one_thread_p50_ms']:.3f} ms, CPU "
        f"{raw['raw_predict_one_thread_cpu_ms']:.3f} ms/call); "
        f"200 rows in one call {raw['raw_predict_200_rows_ms']:.2f} ms",
        "raw one-row p50 just before / after mlhandoff's c=1 run: "
        f"{raw.get('raw_before_c1_p50_ms', float('nan')):.3f} / "
        f"{raw.get('raw_after_c1_p50_ms', float('nan')):.3f} ms; baseline for the bar (lowest): "
        f"{raw_baseline(raw):.3f} ms",
        f"peers' native threads: {results.get('peer_threads')}",
        f"raw in-process one-row compiled predict (compiled form: {raw['compiled_form']}): p50 "
        f"{raw['raw_compiled_p50_ms']:.3f} ms, p99 {raw['raw_compiled_p99_ms']:.3f} ms; just "
        f"before / after mlhandoff's c=1 run "
        f"{raw.get('raw_compiled_before_c1_p50_ms', float('nan')):.3f} / "
        f"{raw.get('raw_compiled_after_c1_p50_ms', float('nan')):.3f} ms; baseline (lowest) "
        f"{raw_baseline(raw, 'compiled'):.3f} ms",
        f"mlhandoff in-process layers, one row: pipeline predictor (arrow->pandas->predict_proba"
        f"->outputs) p50 {raw['mlhandoff_predictor_p50_ms']:.3f} ms; Bundle.predict_table "
        f"(normalize, compiled predict, outputs) p50 "
        f"{raw['mlhandoff_predict_table_compiled_p50_ms']:.3f} ms; JSON parse + validate_json + "
        f"normalize p50 {raw['parse_validate_p50_ms']:.3f} ms",
        "",
        "| server | concurrency | req/s | p50 ms | p90 ms | p99 ms | max ms | errors "
        "| server CPU ms/req | rows/model call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        detail = f" {r['error_detail']}" if r["errors"] else ""
        batch = "-" if r.get("mean_batch_rows") is None else f"{r['mean_batch_rows']:.1f}"
        lines.append(
            f"| {r['server']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50_ms']:.2f} | "
            f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
            f"{r['errors']}{detail} | {r.get('cpu_ms_per_request') or 0:.2f} | {batch} |"
        )
    batch = results.get("batch")
    if batch:
        lines += [
            "",
            f"{batch['rows']}-row batch, rows/s: Bundle.predict (compiled, contract checked) "
            f"{batch['bundle_predict_rows_per_s']:,.0f} (validate=False: "
            f"{batch['bundle_predict_unchecked_rows_per_s']:,.0f}); the pipeline's predict_proba "
            f"{batch['pipeline_predict_proba_rows_per_s']:,.0f}",
        ]
    load = results.get("load_average")
    if load:
        lines.append(
            "load average (1, 5, 15 min) at start "
            + " / ".join(f"{v:.2f}" for v in load["start"])
            + ", at end "
            + " / ".join(f"{v:.2f}" for v in load.get("end", ()))
        )
    lines += ["", "| bar | measured | target | met |", "|---|---|---|---|"]
    for name, value, target, met in bars(results):
        lines.append(
            f"| {name} | {value} | {target} | {'-' if met is None else ('yes' if met else 'NO')} |"
        )
    if results["bad_requests"]:
        servers = list(results["bad_requests"])
        cases = list(next(iter(results["bad_requests"].values())))
        lines += ["", "| request | " + " | ".join(servers) + " |", "|---|" + "---:|" * len(servers)]
        for case in cases:
            lines.append(
                f"| {case} | "
                + " | ".join(str(results["bad_requests"][s][case]["status"]) for s in servers)
                + " |"
            )
    lines += ["", "versions:"]
    for env, names in results.get("versions", {}).items():
        lines.append(f"- {env}: " + ", ".join(f"{k} {v}" for k, v in names.items()))
    if results.get("profile"):
        lines += [
            "",
            "py-spy, mlhandoff serve (share of samples):",
            json.dumps(results["profile"], indent=1),
        ]
    return "\n".join(lines)


# --- the soak ----------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and every process below it (the server and its model process)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    if not total:
        raise RuntimeError(f"no VmRSS for {pid}")
    return total


def soak(args: argparse.Namespace) -> dict[str, Any]:
    bundle = prepare_bundle(OUT / "example")
    records = golden_records(bundle)
    [server] = make_servers(bundle, {"mlhandoff"})
    bodies = OUT / "soak-bodies.json"
    bodies.write_text(json.dumps([json.dumps(r) for r in records]))
    samples: list[tuple[float, int]] = []
    with running(server):
        assert server.process is not None
        pid = server.process.pid
        script = wrk_script(server, records)
        wrk(server, script, 16, 5)  # warm up allocator and caches before the first RSS reading
        time.sleep(1)
        start_rss = rss_kib(pid)
        samples.append((0.0, start_rss))
        log(
            f"soak: {args.soak_rps:g} req/s for {args.soak:g} s against {server.url}; "
            f"RSS at start {start_rss / 1024:.1f} MiB"
        )
        driver = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--_driver",
                server.url + server.path,
                str(args.soak_rps),
                str(args.soak),
                str(bodies),
            ],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            started = time.monotonic()
            while driver.poll() is None:
                time.sleep(min(10.0, max(0.5, args.soak / 60)))
                samples.append((time.monotonic() - started, rss_kib(pid)))
            out, _ = driver.communicate(timeout=30)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
        end_rss = rss_kib(pid)
        samples.append((time.monotonic() - started, end_rss))
        _, metrics = http("GET", server.url + "/metrics")
    summary = json.loads(out.strip().splitlines()[-1])
    after_min = next((kib for t, kib in samples if t >= 60), start_rss)
    return {
        "rate": args.soak_rps,
        "seconds": args.soak,
        "driver": summary,
        "rss_start_mib": start_rss / 1024,
        "rss_after_60s_mib": after_min / 1024,
        "rss_end_mib": end_rss / 1024,
        "rss_max_mib": max(k for _, k in samples) / 1024,
        "rss_growth": end_rss / start_rss - 1,
        "rss_growth_after_60s": end_rss / after_min - 1,
        "rss_samples_mib": [(round(t), round(k / 1024, 1)) for t, k in samples],
        "server_batches": _metric_lines(
            metrics.decode(),
            ("mlhandoff_batch_rows_count", "mlhandoff_batch_rows_sum", "mlhandoff_requests_total"),
        ),
    }


def drift_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Live drift's cost on mlhandoff serve's c=16 throughput: the same bundle served with live
    drift (the default) and with --no-live-drift, wrk runs alternating between the two in one
    run (A B B A ...: a drifting machine load hits both alike); the median req/s of each."""
    bundle = Path(args.bundle) if args.bundle else prepare_bundle(OUT / "example")
    records = golden_records(bundle)
    log("live drift in process")
    in_process = drift_in_process(bundle, records, 500 if args.smoke else 20_000)
    servers = [
        _mlhandoff("live-drift", bundle),
        _mlhandoff("no-live-drift", bundle, "--no-live-drift"),
    ]
    for server in servers:
        server.port = free_port()
        server.command = [a.replace("{port}", str(server.port)) for a in server.command]
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.enter_context(running(server))
        scripts = {s.name: wrk_script(s, records) for s in servers}
        for server in servers:
            wrk(server, scripts[server.name], 16, args.warmup)
        for i in range(args.rounds):
            for server in servers if i % 2 == 0 else servers[::-1]:
                cpu0 = server_cpu(server)
                run = wrk(server, scripts[server.name], 16, args.duration)
                run.cpu_ms_per_request = 1000 * (server_cpu(server) - cpu0) / max(1, run.requests)
                runs[server.name].append(run.__dict__)
                log(f"{server.name} c=16: {run.rps:.0f} req/s, p99 {run.p99_ms:.2f} ms")
        _, text = http("GET", servers[0].url + "/metrics")
    from mlhandoff.serve.metrics import Scrape

    gauges = [s for s in Scrape(text.decode()).samples if s.name == "mlhandoff_drift"]
    median = {name: statistics.median(r["rps"] for r in rs) for name, rs in runs.items()}
    return {
        "bundle": str(bundle),
        "seconds": args.duration,
        "rounds": args.rounds,
        "runs": runs,
        "median_rps": median,
        "cost": 1 - median["live-drift"] / median["no-live-drift"],
        "in_process": in_process,
        "gauges": {f"{g.labels['field']} {g.labels['statistic']}": g.value for g in gauges},
    }


def drift_in_process(
    bundle: Path, records: list[dict[str, Any]], requests: int
) -> dict[str, float]:
    """Microseconds per one-row request in this process: live drift's part (queueing, the
    amortised counting, a scrape every 1,000 requests) beside the contract's validation."""
    import pyarrow as pa
    from prometheus_client import CollectorRegistry, generate_latest

    import mlhandoff
    from mlhandoff.contract.validate import CompiledContract
    from mlhandoff.monitor.reference import load_reference
    from mlhandoff.monitor.rules import positive_class
    from mlhandoff.serve.drift import LiveDrift

    opened = mlhandoff.open_bundle(bundle)
    contract = CompiledContract(opened.spec.data_contract)
    tables = [contract.validate_json([r])[0] for r in records]
    answer = pa.table({"score": [0.1], "label": [0]})
    drift = LiveDrift(
        opened.spec, load_reference(opened), positive_class(opened.record.model.classes)
    )
    registry = CollectorRegistry()
    registry.register(drift)
    started = time.perf_counter()
    for i in range(requests):
        drift.observe(tables[i % len(tables)], answer)
        if i % 1000 == 999:
            generate_latest(registry)
    drift_us = (time.perf_counter() - started) / requests * 1e6
    started = time.perf_counter()
    for i in range(requests):
        contract.validate_json([records[i % len(records)]])
    validate_us = (time.perf_counter() - started) / requests * 1e6
    return {"requests": requests, "drift_us": drift_us, "validate_us": validate_us}


def drift_cost_report(result: dict[str, Any]) -> str:
    median = result["median_rps"]
    lines = [
        f"live drift's cost at c=16 ({result['rounds']} alternating wrk runs of "
        f"{result['seconds']:g} s each):",
    ]
    for name, runs in result["runs"].items():
        each = ", ".join(f"{r['rps']:.0f}" for r in runs)
        cpu = statistics.median(r["cpu_ms_per_request"] for r in runs)
        errors = sum(r["errors"] for r in runs)
        lines.append(
            f"  {name:<14} median {median[name]:8.0f} req/s  (runs: {each}; "
            f"server CPU {cpu:.3f} ms/request; errors {errors})"
        )
    cost = result["cost"]
    ok = "PASS" if cost <= BAR_DRIFT_COST else "FAIL"
    lines.append(f"  cost {cost:+.1%} of throughput (bar <= {BAR_DRIFT_COST:.0%}): {ok}")
    lines.append(f"  gauges exported at the end: {len(result['gauges'])}")
    p = result["in_process"]
    lines.append(
        f"  in process, per one-row request: live drift {p['drift_us']:.1f} us (queue, counting, "
        f"a scrape per 1,000), contract validation {p['validate_us']:.1f} us"
    )
    return "\n".join(lines)


def _metric_lines(text: str, prefixes: tuple[str, ...]) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefixes)]


def soak_report(result: dict[str, Any]) -> str:
    d = result["driver"]
    ok = d["errors"] == 0 and result["rss_growth"] < BAR_SOAK_RSS_GROWTH
    return "\n".join(
        [
            f"soak: {result['rate']:g} req/s scheduled for {result['seconds']:g} s (open loop)",
            f"  sent {d['sent']}, achieved {d['achieved_rps']:.1f} req/s, statuses {d['statuses']}, "
            f"errors {d['errors']} {d['error_detail'] or ''}",
            f"  latency from send: p50 {d['p50_ms']:.2f} ms, p99 {d['p99_ms']:.2f} ms, "
            f"max {d['max_ms']:.1f} ms; from schedule: p99 {d['sched_p99_ms']:.2f} ms",
            f"  RSS start {result['rss_start_mib']:.1f} MiB, after 60 s "
            f"{result['rss_after_60s_mib']:.1f} MiB, end {result['rss_end_mib']:.1f} MiB, max "
            f"{result['rss_max_mib']:.1f} MiB; growth {100 * result['rss_growth']:+.1f} % "
            f"(from 60 s: {100 * result['rss_growth_after_60s']:+.1f} %)",
            f"  bar (zero errors, RSS growth < {100 * BAR_SOAK_RSS_GROWTH:g} %): "
            f"{'met' if ok else 'NOT met'}",
            "  " + "; ".join(result["server_batches"]),
        ]
    )


async def _drive(url: str, rate: float, seconds: float, bodies_path: str) -> dict[str, Any]:
    """Open-loop driver: requests are scheduled at ``rate``; 64 keep-alive connections."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    bodies = [b.encode() for b in json.loads(Path(bodies_path).read_text())]
    requests = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n\r\n"
        ).encode()
        + b
        for b in bodies
    ]
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    from_schedule: list[float] = []

    async def connection() -> None:
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            index, scheduled = item
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                assert reader is not None
                sent = time.perf_counter()
                writer.write(requests[index % len(requests)])
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                await asyncio.wait_for(reader.readexactly(length), 30)
                done = time.perf_counter()
                statuses[int(head.split(b" ", 2)[1])] += 1
                latencies.append((done - sent) * 1000)
                from_schedule.append((done - scheduled) * 1000)
                if re.search(rb"(?i)connection:\s*close", head):
                    writer.close()
                    reader = writer = None
            except Exception as exc:  # counted, the connection is reopened
                errors[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(64)]
    start = time.perf_counter()
    interval = 1 / rate
    total = int(rate * seconds)
    for i in range(total):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, start + i * interval))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    non_200 = sum(v for k, v in statuses.items() if k != 200)
    return {
        "sent": total,
        "achieved_rps": sum(statuses.values()) / elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": sum(errors.values()) + non_200,
        "error_detail": dict(errors),
        "p50_ms": _pct(latencies, 50) if latencies else float("nan"),
        "p99_ms": _pct(latencies, 99) if latencies else float("nan"),
        "max_ms": max(latencies) if latencies else float("nan"),
        "sched_p99_ms": _pct(from_schedule, 99) if from_schedule else float("nan"),
    }


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load run")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of unrecorded load first"
    )
    parser.add_argument(
        "--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 16]
    )
    parser.add_argument(
        "--only",
        help="comma-separated servers: mlhandoff, mlflow, bentoml, "
        "bentoml-batched; only when named: mlhandoff-w2 (--workers 2), mlhandoff-wait2ms "
        "(--batch-max-wait-ms 2), mlhandoff-original (--no-compile: the pipeline itself, in its "
        "model process); always run: mlhandoff-thread (--no-model-process), bare-asgi",
    )
    parser.add_argument(
        "--peer-default-threads",
        dest="peer_threads",
        action="store_false",
        help="leave the peers' OpenMP/BLAS threads at the library default",
    )
    parser.add_argument(
        "--batch-rows", type=int, default=BATCH_ROWS, help="rows of the Bundle.predict batch"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy on mlhandoff serve at c=16")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="instead of the comparison: fixed-rate soak of mlhandoff serve",
    )
    parser.add_argument(
        "--soak-rps",
        type=float,
        default=200.0,
        help="soak request rate (default: the example spec's throughput_rps, 200)",
    )
    parser.add_argument(
        "--drift-cost",
        action="store_true",
        help="instead of the comparison: live drift's cost on c=16 throughput (with and without "
        "--no-live-drift, alternating runs)",
    )
    parser.add_argument("--rounds", type=int, default=6, help="--drift-cost: runs per server")
    parser.add_argument("--bundle", help="--drift-cost: serve this bundle (default: the bench's)")
    parser.add_argument(
        "--smoke", action="store_true", help="--drift-cost at a tiny size (runs of 1 s, 2 rounds)"
    )
    parser.add_argument("--_driver", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._driver:
        url, rate, seconds, bodies = args._driver
        with contextlib.suppress(ImportError):
            import uvloop

            uvloop.install()
        print(json.dumps(asyncio.run(_drive(url, float(rate), float(seconds), bodies))))
        return

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if args.smoke:
        args.duration, args.warmup, args.rounds = 1.0, 1.0, 2
    if args.drift_cost:
        result = drift_cost(args)
        text = drift_cost_report(result)
        (OUT / f"drift-cost-{stamp}.json").write_text(json.dumps(result, indent=2))
    elif args.soak:
        result = soak(args)
        text = soak_report(result)
        (OUT / f"soak-{stamp}.json").write_text(json.dumps(result, indent=2))
    else:
        result = compare(args)
        text = report(result)
        (OUT / f"results-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(text)
    log(f"results in {(OUT / f'*-{stamp}.json').relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        import mlhandoff  # noqa: F401
    except ImportError:  # run with the project's venv, where mlhandoff is installed
        if PROJECT_PY.exists() and Path(sys.executable) != PROJECT_PY:
            os.execv(str(PROJECT_PY), [str(PROJECT_PY), __file__, *sys.argv[1:]])
        raise
    main()
