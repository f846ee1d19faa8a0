"""The model process: a child process that loads one bundle and answers predict jobs.

The server runs the model here rather than in its own process, so that the event loop (HTTP,
JSON, validation) and the model (scikit-learn and pandas are mostly Python, holding the GIL)
run on two cores instead of taking turns on one. A crash or a hang of the model kills this
process, not the server, which restarts it. Micro-batching happens here too
(``batching.run_batches``): the model process knows the moment it becomes free. ("Workers" are
something else: the server processes of ``--workers N``, each with its own model process.)

Protocol, over a Unix socket pair inherited as a file descriptor: frames of a 4-byte big-endian
length, one kind byte, then the payload.

    server → model process  P  job id (u64), deadline (f64, time.monotonic()), Arrow IPC
    model process → server  R  ready (loaded and warmed)
                            L  JSON {"type", "message"}: the bundle failed to load
                            O  JSON length (u32), JSON {"ids", "rows"}, Arrow IPC of the outputs
                            E  JSON {"ids", "type", "stack"}: the model raised (never its message)
                            X  JSON {"ids"}: deadline passed before the model was free

Started by ``runners.ProcessRunner`` as ``python -c "from mlhandoff.serve.model_process import
main; raise SystemExit(main())" --fd N --bundle DIR ...``. It imports neither the HTTP app nor
the runners: its logging comes from ``serve.logs``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import json
import logging
import os
import queue
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from mlhandoff.errors import ModelLoadError, PredictError
from mlhandoff.serve.batching import Job, run_batches
from mlhandoff.serve.logs import configure_logging

PREDICT, READY, LOAD_FAILED, OUTPUT, FAILED, EXPIRED = b"P", b"R", b"L", b"O", b"E", b"X"
HEADER = struct.Struct(">IB")
JOB = struct.Struct(">Qd")
_JSON_LEN = struct.Struct(">I")
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>

log = logging.getLogger("mlhandoff.model_process")


def checked_predict(
    bundle_path: Path, threads: int | None, *, compiled: bool = True
) -> Callable[[pa.Table], pa.Table]:
    """The bundle's model as table → named outputs, holding outputs to the output contract.

    Opens (and so verifies) the bundle itself: the process that deserialises the model is the
    one that checked the hashes. Call it in the thread that will predict: the native thread
    limit is per thread, and applies only to libraries loaded by then. ``compiled``: the
    bundle's compiled model when it has one (pack proved it answers like the model)."""
    from mlhandoff.bundle.bundle import open_bundle
    from mlhandoff.contract.outputs import output_violations

    bundle = open_bundle(bundle_path)
    bundle.predictor(compiled)
    limit_threads(threads)
    outputs = bundle.outputs

    def predict(table: pa.Table) -> pa.Table:
        named = bundle.predict_table(table, compiled=compiled)  # normalised once per batch
        problems = output_violations(named, outputs)
        if problems:  # a NaN or out-of-range score is a model failure, not an answer
            raise PredictError("outputs break the output contract: " + "; ".join(problems))
        return named

    inputs, _ = bundle.golden()
    try:
        predict(inputs.slice(0, 1))  # warm: first calls pay for imports and caches
        predict(inputs)
    except Exception as exc:  # type only: the message may quote golden rows (PII fields)
        raise ModelLoadError(
            f"the model failed on the bundle's golden rows while warming up "
            f"({type(exc).__name__}); run `mlhandoff verify` on the bundle"
        ) from exc
    return predict


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment that caps native thread pools in a process from its start (an OpenMP pool
    started with more threads keeps them spinning between calls, burning a core)."""
    if threads is None:
        return {}
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
    return dict.fromkeys(names, str(threads))


def limit_threads(threads: int | None) -> None:
    """Cap the model's native thread pools (OpenMP, BLAS) in the calling thread.

    Requests already run concurrently; a model that also spreads each call over every core
    oversubscribes the CPU: on 2 shared cores a HistGradientBoosting call took 55 ms with two
    OpenMP threads and 8.6 ms with one.
    """
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def failure(exc: BaseException) -> dict[str, str]:
    """Type and stack, never the message: models put input values (PII) in their messages."""
    return {"type": type(exc).__name__, "stack": "".join(traceback.format_tb(exc.__traceback__))}


# --- framing ---------------------------------------------------------------------------------


def to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(payload: bytes | memoryview) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


def frame(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return HEADER.pack(len(payload), kind[0]) + payload


def job_frame(job_id: int, deadline: float, table: pa.Table) -> bytes:
    return frame(PREDICT, JOB.pack(job_id, deadline), to_ipc(table))


def output_frame(ids: list[int], rows: list[int], outputs: pa.Table) -> bytes:
    meta = json.dumps({"ids": ids, "rows": rows}).encode()
    return frame(OUTPUT, _JSON_LEN.pack(len(meta)), meta, to_ipc(outputs))


def read_output(payload: bytes) -> tuple[list[int], list[int], pa.Table]:
    (size,) = _JSON_LEN.unpack_from(payload)
    meta = json.loads(payload[_JSON_LEN.size : _JSON_LEN.size + size])
    table = from_ipc(memoryview(payload)[_JSON_LEN.size + size :])
    return meta["ids"], meta["rows"], table


def json_frame(kind: bytes, data: dict[str, object]) -> bytes:
    return frame(kind, json.dumps(data).encode())


# --- the model process -----------------------------------------------------------------------


class _SocketReplies:
    """Batch outcomes as frames to the server (the model thread is the only writer)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def outputs(self, jobs: list[Job], outputs: pa.Table) -> None:
        rows = [j.table.num_rows for j in jobs]
        self._sock.sendall(output_frame([j.id for j in jobs], rows, outputs))

    def failed(self, jobs: list[Job], error: BaseException) -> None:
        self._sock.sendall(json_frame(FAILED, {"ids": [j.id for j in jobs], **failure(error)}))

    def expired(self, jobs: list[Job]) -> None:
        self._sock.sendall(json_frame(EXPIRED, {"ids": [j.id for j in jobs]}))


class _SocketJobs:
    """Jobs read from the server's socket by the model's own thread, just before each batch.

    No reader thread: one would wake up for every job arriving during a model call and take
    the GIL from the model each time. Frames wait in the socket buffer instead."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._chunk = bytearray(1 << 18)
        self._view = memoryview(self._chunk)
        self._ready: collections.deque[Job] = collections.deque()
        self._closed = False

    def take(self, timeout: float | None) -> Job | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            if self._closed:
                return None
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._receive(wait):
                raise queue.Empty
        return self._ready.popleft()

    def _receive(self, wait: float | None) -> bool:
        """Read what the socket holds (waiting up to ``wait`` for the first byte); False if
        nothing came. Complete frames become jobs."""
        if wait is not None and not select.select([self._sock], [], [], wait)[0]:
            return False
        flags = 0  # the first read may wait; the rest take only what is already there
        while True:
            try:
                n = self._sock.recv_into(self._chunk, 0, flags)
            except BlockingIOError:
                break
            except OSError:
                n = 0
            if not n:
                self._closed = True
                break
            self._buffer += self._view[:n]
            if n < len(self._chunk):
                break
            flags = socket.MSG_DONTWAIT
        self._parse()
        return True

    def _parse(self) -> None:
        buffer, offset = self._buffer, 0
        while len(buffer) - offset >= HEADER.size:
            size, _kind = HEADER.unpack_from(buffer, offset)
            start, end = offset + HEADER.size, offset + HEADER.size + size
            if len(buffer) < end:
                break
            job_id, deadline = JOB.unpack_from(buffer, start)
            self._ready.append(
                Job(job_id, deadline, from_ipc(bytes(buffer[start + JOB.size : end])))
            )
            offset = end
        del buffer[:offset]


def _follow_the_server(parent: int) -> None:
    """Live and die with the server: Ctrl-C or a service manager's SIGTERM reach the whole
    process group, but the server stops its model process itself once its requests are
    answered; and on Linux the kernel kills the model process if the server dies (even mid-call,
    even hung)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:  # the server died before the line above
        sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlhandoff-model-process")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--parent", type=int, default=0, help="the server's pid")
    parser.add_argument("--no-compile", action="store_true", help="serve the model itself")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    configure_logging(args.log_level)
    _follow_the_server(args.parent)
    sock = socket.socket(fileno=args.fd)
    try:
        predict = checked_predict(args.bundle, args.threads or None, compiled=not args.no_compile)
    except Exception as exc:
        log.error("model failed to load: %s: %s", type(exc).__name__, exc)
        sock.sendall(json_frame(LOAD_FAILED, {"type": type(exc).__name__, "message": str(exc)}))
        return 1
    sock.sendall(frame(READY))
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server went away
        run_batches(
            _SocketJobs(sock),
            predict,
            _SocketReplies(sock),
            max_rows=args.max_rows,
            max_wait_s=args.max_wait_ms / 1000,
        )
    return 0
