"""The model outside the server: batching where the model runs, model-process crashes and hangs,
jobs past their deadline, and the in-thread mode (``--no-model-process``)."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from mlhandoff.serve.batching import Job, QueueSource, run_batches, split
from serving import (
    SCORER,
    free_port,
    live_server,
    pyfunc_bundle,
    scrape,
    serve_process,
    wait_ready_at,
    wait_until,
)

JSON = {"content-type": "application/json"}


def _post(url: str, x: float, timeout: float = 20) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=timeout) as client:
        return client.post(
            "/predict", content=json.dumps({"x": x, "c": "a", "secret": "s"}), headers=JSON
        )


def _metric(server, name: str) -> float:
    return scrape(server.client).value(name)


def _wait_restarted(server) -> None:
    wait_until(
        lambda: _metric(server, "mlhandoff_model_worker_restarts_total") >= 1,
        "the model process to be replaced",
    )


def _wait_ready(server, timeout_s: float = 30) -> list[str]:
    """Poll /readyz until ready; the statuses seen on the way."""
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = server.client.get("/readyz").json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "ready":
            return seen
        time.sleep(0.05)
    raise AssertionError(f"never ready again: {seen}")


# --- run_batches, in a plain thread ------------------------------------------------------------


class _Recorder:
    """A Replies that keeps what it was told."""

    def __init__(self) -> None:
        self.answers: dict[int, object] = {}
        self.batches: list[list[int]] = []

    def outputs(self, jobs: list[Job], outputs: pa.Table) -> None:
        self.batches.append([j.id for j in jobs])
        parts = split(outputs, [j.table.num_rows for j in jobs])
        for job, part in zip(jobs, parts, strict=True):
            self.answers[job.id] = part.column("y").to_pylist()

    def failed(self, jobs: list[Job], error: BaseException) -> None:
        for job in jobs:
            self.answers[job.id] = f"failed: {type(error).__name__}"

    def expired(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.answers[job.id] = "expired"


def _double(table: pa.Table) -> pa.Table:
    x = table.column("x").to_pylist()
    if 13 in x:
        raise ValueError("unlucky")
    return pa.table({"y": [v * 2 for v in x]})


def test_queued_jobs_share_one_call_and_get_their_own_rows() -> None:
    source = QueueSource()
    jobs = source.queue
    later = time.monotonic() + 60
    for i, xs in enumerate([[1], [2, 3], [4]]):
        jobs.put(Job(i, later, pa.table({"x": xs})))
    jobs.put(None)
    replies = _Recorder()
    run_batches(source, _double, replies, max_rows=256)
    assert replies.batches == [[0, 1, 2]]
    assert replies.answers == {0: [2], 1: [4, 6], 2: [8]}


def test_max_rows_splits_batches_and_a_failing_job_is_isolated() -> None:
    source = QueueSource()
    jobs = source.queue
    later = time.monotonic() + 60
    for i, x in enumerate([1, 13, 3, 4, 5]):
        jobs.put(Job(i, later, pa.table({"x": [x]})))
    jobs.put(None)
    replies = _Recorder()
    run_batches(source, _double, replies, max_rows=3)
    # first call [1, 13, 3] fails; each job is then run alone; [4, 5] is the next batch
    assert replies.answers == {0: [2], 1: "failed: ValueError", 2: [6], 3: [8], 4: [10]}
    assert replies.batches == [[0], [2], [3, 4]]


def test_jobs_past_their_deadline_are_not_computed() -> None:
    source = QueueSource()
    jobs = source.queue
    jobs.put(Job(0, time.monotonic() - 1, pa.table({"x": [1]})))
    jobs.put(Job(1, time.monotonic() + 60, pa.table({"x": [2]})))
    jobs.put(None)
    replies = _Recorder()
    run_batches(source, _double, replies)
    assert replies.answers == {0: "expired", 1: [4]}
    assert replies.batches == [[1]]


def test_max_wait_gathers_jobs_that_arrive_shortly_after() -> None:
    source = QueueSource()
    jobs = source.queue
    later = time.monotonic() + 60
    jobs.put(Job(0, later, pa.table({"x": [1]})))

    def feed() -> None:
        try:  # each job arrives after the batcher took the one before
            wait_until(jobs.empty, "the batcher to take job 0")
            jobs.put(Job(1, later, pa.table({"x": [2]})))
            wait_until(jobs.empty, "the batcher to take job 1")
        finally:
            jobs.put(None)

    threading.Thread(target=feed).start()
    replies = _Recorder()
    run_batches(source, _double, replies, max_wait_s=10)
    assert replies.batches == [[0, 1]]


# --- the model process, on a real server -----------------------------------------------------

CRASHER = """
import os
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    if (x == 13).any():
        os._exit(3)  # a native crash, as far as the server can tell
    return np.clip(x / 100.0, 0, 1)
"""


def test_a_crashing_model_answers_500_and_its_process_is_restarted(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "crasher", CRASHER)
    with live_server(bundle) as server:
        crashed = _post(server.url, 13.0)
        assert crashed.status_code == 500
        assert crashed.json()["error"]["code"] == "model_error"
        statuses = _wait_ready(server)
        assert statuses[0] == "restarting"  # the replica said so while the model process restarted
        assert _post(server.url, 5.0).json()["predictions"][0]["score"] == 0.05
        assert _metric(server, "mlhandoff_model_worker_restarts_total") == 1


HANGER = """
import time
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    if (x == 88).any():
        time.sleep(3600)
    return np.clip(x / 100.0, 0, 1)
"""


def test_a_hung_model_is_killed_and_replaced(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "hanger", HANGER, api={"timeout_ms": 300})
    with live_server(bundle, model_kill_after_s=1.0) as server:
        hung = _post(server.url, 88.0)
        assert hung.status_code == 504
        _wait_restarted(server)
        _wait_ready(server)
        assert _post(server.url, 5.0).status_code == 200
        assert _metric(server, "mlhandoff_model_worker_restarts_total") == 1


SLOW_LOGGER = """
import os
import time
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    if (x == np.round(x)).all():  # this test's requests, not pack's or warm-up's golden rows
        with open(os.environ["MLH_TEST_CALLS"], "a") as calls:
            calls.write(f"{len(frame)}\\n")
        time.sleep(1.5)
    return np.clip(x / 100.0, 0, 1)
"""


def test_requests_that_timed_out_while_queued_are_never_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("MLH_TEST_CALLS", str(calls))  # the model process inherits the environment
    bundle = pyfunc_bundle(tmp_path, "slowlog", SLOW_LOGGER, api={"timeout_ms": 200})
    calls.unlink(missing_ok=True)  # pack answered the API example (for the README) itself
    with live_server(bundle) as server:
        codes: list[int] = []

        def send(x: float) -> None:
            with httpx.Client(base_url=server.url, timeout=20) as client:
                body = json.dumps({"x": x, "c": "b", "secret": "s"})
                codes.append(client.post("/predict", content=body, headers=JSON).status_code)

        first = threading.Thread(target=send, args=(1.0,))
        first.start()
        wait_until(calls.exists, "the first request to reach the model")
        others = [threading.Thread(target=send, args=(x,)) for x in (2.0, 3.0, 4.0)]
        for t in others:
            t.start()
        for t in [first, *others]:
            t.join()
        assert codes == [504] * 4
        # jobs are taken in order: once a later request is answered, the three were handled
        wait_until(lambda: _post(server.url, 5.5).status_code == 200, "a later answer")
        assert calls.read_text().split() == ["1"]  # dropped, not run


MODES = """
import os
import pathlib
import time
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    if (x == 66).any():
        raise RuntimeError("boom")
    if (x == 77).any():
        pathlib.Path(os.environ["MLH_TEST_BUSY"]).touch()
        time.sleep(0.6)
    if (x == 88).any():
        time.sleep(1.5)
    return np.clip(x / 100.0, 0, 1)
"""


@pytest.mark.parametrize("model_process", [True, False], ids=["process", "thread"])
def test_one_bad_request_does_not_fail_its_batch_neighbours_in_both_modes(
    tmp_path: Path, model_process, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = tmp_path / "busy"
    monkeypatch.setenv("MLH_TEST_BUSY", str(busy))
    bundle = pyfunc_bundle(tmp_path, "modes", MODES, api={"timeout_ms": 1000})
    with live_server(bundle, model_process=model_process) as server:
        results: dict[float, int] = {}

        def send(x: float) -> None:
            results[x] = _post(server.url, x).status_code

        slow = threading.Thread(target=send, args=(77.0,))
        slow.start()
        wait_until(busy.exists, "the model to be busy")  # the next five queue meanwhile
        batch = [threading.Thread(target=send, args=(x,)) for x in (66.0, 1.0, 2.0, 3.0, 4.0)]
        for t in batch:
            t.start()
        for t in [slow, *batch]:
            t.join()
        assert results == {77.0: 200, 66.0: 500, 1.0: 200, 2.0: 200, 3.0: 200, 4.0: 200}
        assert _post(server.url, 88.0).status_code == 504
        wait_until(lambda: _post(server.url, 5.0).status_code == 200, "the slow call to end")
        assert _post(server.url, 5.0).json()["predictions"][0]["score"] == 0.05


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, waiting for a parent that is gone to be reaped


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads the process tree from /proc")
def test_the_model_process_exits_when_the_server_is_killed(tmp_path: Path) -> None:
    import signal

    bundle = pyfunc_bundle(tmp_path, "orphan", SCORER)
    port = free_port()
    server = serve_process(bundle, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_ready_at(client)
            assert (
                client.post(
                    "/predict",
                    content=json.dumps({"x": 5.0, "c": "a", "secret": "s"}),
                    headers=JSON,
                ).json()["predictions"][0]["score"]
                == 0.05
            )
        [child] = _children(server.pid)
        server.send_signal(signal.SIGKILL)  # no shutdown hook runs
        server.wait(10)
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(child), "the model process outlived its server"
    finally:
        server.kill()
        server.wait(10)
        if server.stderr is not None:
            server.stderr.close()


SNOOPER = """
import os

def predict(frame):
    # 1.0 when the model code can read the server's bearer token from its environment
    return [1.0 if "MLH_TEST_TOKEN" in os.environ else 0.0] * len(frame)
"""


def test_the_model_process_does_not_inherit_the_servers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLH_TEST_TOKEN", "s3cret")
    bundle = pyfunc_bundle(tmp_path, "snooper", SNOOPER)
    with live_server(bundle, token="s3cret", token_env="MLH_TEST_TOKEN") as server:
        answer = server.client.post(
            "/predict",
            content=json.dumps({"x": 1.0, "c": "a", "secret": "s"}),
            headers={**JSON, "Authorization": "Bearer s3cret"},
        )
        assert answer.status_code == 200
        assert answer.json()["predictions"][0]["score"] == 0.0


def test_while_a_crashed_primary_restarts_the_fallback_answers(tmp_path: Path) -> None:
    primary = pyfunc_bundle(tmp_path, "crasher", CRASHER)
    fallback = pyfunc_bundle(
        tmp_path, "constant", "def predict(frame):\n    return [0.25] * len(frame)\n"
    )
    with live_server(primary, fallback=fallback) as server:
        crashed = _post(server.url, 13.0)
        assert crashed.status_code == 200
        assert crashed.headers["X-Model-Fallback"] == "constant-1.0.0"
        assert crashed.json()["predictions"][0]["score"] == 0.25
        ready = server.client.get("/readyz")  # the replica can still serve: not a 503
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        _wait_ready(server)
        assert _post(server.url, 5.0).json()["predictions"][0]["score"] == 0.05


def test_a_large_batch_crosses_the_model_process_socket_in_pieces(tmp_path: Path) -> None:
    """50,000 rows: the job frame (about 1 MB of Arrow IPC) and its answer arrive in many reads,
    and the model process reassembles them; every row gets its own answer, in order."""
    api = {"max_batch_size": 50_000, "max_body_bytes": 8_000_000, "timeout_ms": 10_000}
    bundle = pyfunc_bundle(tmp_path, "big", SCORER, api=api)
    xs = [float(i % 100) for i in range(50_000)]
    xs = [x if x not in (66.0, 77.0) else 1.0 for x in xs]  # SCORER's failure and slow values
    body = {"instances": [{"x": x, "c": "a", "secret": f"s{i}"} for i, x in enumerate(xs)]}
    with live_server(bundle) as server:
        answer = server.client.post("/predict", content=json.dumps(body), headers=JSON)
        assert answer.status_code == 200, answer.text[:300]
        scores = [p["score"] for p in answer.json()["predictions"]]
        assert scores == pytest.approx([x / 100 for x in xs])


def test_the_model_process_imports_no_http_app() -> None:
    """It loads the model, not the server (it once imported the ASGI app for a log formatter:
    worker -> server -> app -> runners -> worker)."""
    import subprocess
    import sys

    code = (
        "import sys; from mlhandoff.serve.model_process import main; "
        "print(sorted(m for m in sys.modules if m.startswith(('starlette', 'uvicorn', "
        "'prometheus_client', 'mlhandoff.serve.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(done.stdout.replace("'", '"'))
    assert loaded == [
        "mlhandoff.serve.batching",
        "mlhandoff.serve.logs",
        "mlhandoff.serve.model_process",
    ]


def test_model_process_reads_frames_split_across_writes_and_stops_at_eof() -> None:
    import array
    import fcntl
    import socket
    import termios

    from mlhandoff.serve import model_process

    server_end, child_end = socket.socketpair()
    jobs = model_process._SocketJobs(child_end)
    first = model_process.job_frame(7, 123.5, pa.table({"x": [1.0, 2.0]}))
    second = model_process.job_frame(8, 124.5, pa.table({"x": [3.0]}))

    data = first + second
    parsed_first, checked_gap = threading.Event(), threading.Event()

    def unread() -> int:  # bytes waiting in the model process's end of the socket
        count = array.array("i", [0])
        fcntl.ioctl(child_end.fileno(), termios.FIONREAD, count)
        return count[0]

    def feed() -> None:
        for piece in (data[:3], data[3:40], data[40:-5]):  # each read on its own
            server_end.sendall(piece)
            wait_until(lambda: unread() == 0, "the piece to be read")
        parsed_first.wait(10)
        checked_gap.wait(10)
        server_end.sendall(data[-5:])
        server_end.close()

    threading.Thread(target=feed).start()
    got = jobs.take(None)
    parsed_first.set()
    assert got is not None and (got.id, got.deadline) == (7, 123.5)
    assert got.table.column("x").to_pylist() == [1.0, 2.0]
    with pytest.raises(queue.Empty):  # the second frame lacks its last 5 bytes
        jobs.take(0)
    checked_gap.set()
    later = jobs.take(None)
    assert later is not None and later.id == 8 and later.table.num_rows == 1
    assert jobs.take(None) is None  # the server closed its end
    child_end.close()


def test_a_hung_model_process_with_undelivered_jobs_is_still_replaced(tmp_path: Path) -> None:
    """Megabytes queued for a model process that no longer reads must not stall its replacement."""
    api = {"max_batch_size": 50_000, "max_body_bytes": 8_000_000, "timeout_ms": 300}
    bundle = pyfunc_bundle(tmp_path, "stuck", HANGER, api=api)
    big = {"instances": [{"x": 1.0, "c": "a", "secret": f"s{i}"} for i in range(50_000)]}
    with live_server(bundle, model_kill_after_s=1.0) as server:
        assert _post(server.url, 88.0).status_code == 504  # the model process hangs from here on
        stuck = server.client.post("/predict", content=json.dumps(big), headers=JSON)
        assert stuck.status_code == 504  # about 1 MB now waits in the socket for the model process
        _wait_restarted(server)
        _wait_ready(server)
        assert _post(server.url, 5.0).json()["predictions"][0]["score"] == 0.05
