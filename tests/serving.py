"""Helpers for serving tests: real uvicorn servers on 127.0.0.1, small python-function bundles."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pyarrow as pa
import uvicorn
import yaml

import mlhandoff
from mlhandoff.serve import ServeConfig, create_app
from mlhandoff.serve.metrics import Scrape

T = TypeVar("T")


class LiveServer:
    """A real uvicorn server in a thread, on a free port of 127.0.0.1."""

    def __init__(self, config: ServeConfig) -> None:
        self.app = create_app(config)
        self.service = self.app.state.service
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, wait_ready: bool = True) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=20)
        if wait_ready:
            wait_ready_at(self.client)
        return self

    def stop(self) -> None:
        self.client.close()
        self._server.should_exit = True
        self._thread.join(15)


def wait_ready_at(client: httpx.Client, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/readyz").status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError("server never became ready")


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 30) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout_s`` (a bound on
    a wait, never a measurement)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def scrape(client: httpx.Client) -> Scrape:
    return Scrape(client.get("/metrics").text)


def in_one_second(burst: Callable[[], T], attempts: int = 5) -> T:
    """``burst()`` run from the start of a fresh one-second window (the rate limiter's), again
    when a loaded machine made it straddle two windows."""
    for _ in range(attempts):
        time.sleep(1 - (time.time() % 1) + 0.01)  # until the next second starts
        started = int(time.time())
        result = burst()
        if int(time.time()) == started:
            return result
    raise AssertionError(f"no burst fitted in one second in {attempts} attempts")


@contextlib.contextmanager
def live_server(bundle: Path, **options: Any) -> Iterator[LiveServer]:
    wait = options.pop("wait_ready", True)
    server = LiveServer(ServeConfig(bundle=bundle, **options)).start(wait_ready=wait)
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PYFUNC_FIELDS = {
    "x": {"type": "float", "min": 0, "max": 100, "description": "A number."},
    "c": {"type": "category", "domain": ["a", "b"], "description": "A category."},
    "secret": {"type": "string", "pii": True, "nullable": True, "description": "PII."},
}


def pyfunc_bundle(
    root: Path,
    name: str,
    code: str,
    api: dict[str, Any] | None = None,
    version: str = "1.0.0",
    fields: dict[str, Any] | None = None,
    sample: pa.Table | None = None,
) -> Path:
    """Pack a python_function bundle whose ``predict(frame)`` is ``code`` (score = its return);
    ``fields`` and ``sample`` replace the default contract (x, c, secret) and its sample."""
    work = root / f"{name}-src"
    shutil.rmtree(work, ignore_errors=True)
    (work / "model_code").mkdir(parents=True)
    (work / "model_code" / f"{name.replace('-', '_')}_model.py").write_text(textwrap.dedent(code))
    spec = {
        "name": name,
        "version": version,
        "model": {
            "path": "model_code",
            "flavor": "python_function",
            "entrypoint": f"{name.replace('-', '_')}_model:predict",
            "task": "binary_classification",
            "version_tag": f"v{version}",
        },
        "data_contract": {"fields": fields or PYFUNC_FIELDS},
        "privacy": {"pii_fields": [] if fields else ["secret"]},
        "api": {"examples": [] if fields else [{"x": 1.0, "c": "a", "secret": "s"}], **(api or {})},
        "golden": {"rows": 20},
    }
    (work / "handoff.yaml").write_text(yaml.safe_dump(spec))
    rng = np.random.default_rng(0)
    if sample is None:
        sample = pa.table(
            {
                "x": rng.uniform(0, 50, 40),
                "c": rng.choice(["a", "b"], 40),
                "secret": [f"s{i}" for i in range(40)],
            }
        )
    return mlhandoff.pack(
        spec=work / "handoff.yaml", sample=sample, out=root / "dist", force=True
    ).path


#: A model: score = x / 100. Fails for x == 66, sleeps 1.5 s for x == 77.
SCORER = """
import time
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    if (x == 66).any():
        raise RuntimeError("boom: model failure")
    if (x == 77).any():
        time.sleep(1.5)
    return np.clip(x / 100.0, 0, 1)
"""


def redis_server(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: run `make test` (it installs it) or apt-get install redis-server"
        )
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def serve_process(bundle: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("mlhandoff")
    return subprocess.Popen(
        [str(exe), "serve", str(bundle), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
