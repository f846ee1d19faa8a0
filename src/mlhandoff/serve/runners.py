"""Where the model runs: in a model process (the default) or in a thread of the server.

Both expose the same small interface: ``start()`` (load and warm), ``predict(table,
deadline)``, ``stop()``, and ``ready`` (False while a crashed model process restarts). Both batch
concurrent jobs with ``batching.run_batches`` in the thread that runs the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from mlhandoff.errors import (
    ModelCrashed,
    ModelExpired,
    ModelFailed,
    ModelLoadError,
    PredictError,
)
from mlhandoff.serve import model_process
from mlhandoff.serve.batching import Job, QueueSource, run_batches, split

log = logging.getLogger("mlhandoff.serve")

OnBatch = Callable[[int], None]

#: Where ``serve.server`` passes its config to the server processes of ``--workers`` (it may
#: hold secrets).
SERVE_CONFIG_ENV = "MLHANDOFF_SERVE_CONFIG"

#: How long a model process may take to verify, load and warm the model before it counts as stuck.
LOAD_TIMEOUT_S = 600.0


@dataclass
class RunOptions:
    """How a runner batches and threads the model's calls."""

    threads: int | None = 1
    max_rows: int = 256
    max_wait_s: float = 0.0
    on_batch: OnBatch = lambda rows: None
    #: Called each time a crashed or hung model process is replaced.
    on_restart: Callable[[], None] = lambda: None
    #: Serve the bundle's compiled model when it has one (False: the model itself).
    compiled: bool = True


class Runner(Protocol):
    ready: bool

    async def start(self) -> None: ...

    async def predict(self, table: pa.Table, deadline: float) -> pa.Table: ...

    async def stop(self) -> None: ...


class ThreadRunner:
    """The model in one thread of the server process (``--no-model-process``)."""

    def __init__(self, bundle: Path, options: RunOptions) -> None:
        self._bundle = bundle
        self._options = options
        self._jobs = QueueSource()
        self._futures: dict[int, asyncio.Future[pa.Table]] = {}
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        loaded: asyncio.Future[None] = self._loop.create_future()
        threading.Thread(
            target=self._main, args=(loaded,), name="mlhandoff-model", daemon=True
        ).start()
        await loaded
        self.ready = True

    def _main(self, loaded: asyncio.Future[None]) -> None:
        assert self._loop is not None
        error: ModelLoadError | None = None
        try:
            predict = model_process.checked_predict(
                self._bundle, self._options.threads, compiled=self._options.compiled
            )
        except Exception as exc:
            error = ModelLoadError(f"{type(exc).__name__}: {exc}")
        try:
            self._loop.call_soon_threadsafe(_settle, loaded, None, error)
        except RuntimeError:  # the server stopped while the model was loading
            return
        if error is not None:
            return
        options = self._options
        run_batches(
            self._jobs, predict, self, max_rows=options.max_rows, max_wait_s=options.max_wait_s
        )

    async def predict(self, table: pa.Table, deadline: float) -> pa.Table:
        assert self._loop is not None, "start() first"
        job_id = next(self._ids)
        future: asyncio.Future[pa.Table] = self._loop.create_future()
        self._futures[job_id] = future
        self._jobs.queue.put(Job(job_id, deadline, table))
        try:
            return await future
        finally:
            self._futures.pop(job_id, None)

    async def stop(self) -> None:
        self._jobs.queue.put(None)
        self.ready = False

    # Replies, called in the model thread:

    def outputs(self, jobs: list[Job], outputs: pa.Table) -> None:
        parts = split(outputs, [j.table.num_rows for j in jobs])
        self._reply([(j.id, part, None) for j, part in zip(jobs, parts, strict=True)], outputs)

    def failed(self, jobs: list[Job], error: BaseException) -> None:
        failure = ModelFailed(**model_process.failure(error))
        self._reply([(j.id, None, failure) for j in jobs])

    def expired(self, jobs: list[Job]) -> None:
        self._reply([(j.id, None, ModelExpired("the time budget ran out")) for j in jobs])

    def _reply(
        self,
        answers: list[tuple[int, pa.Table | None, BaseException | None]],
        batch: pa.Table | None = None,
    ) -> None:
        def deliver() -> None:
            if batch is not None:
                self._options.on_batch(batch.num_rows)
            for job_id, result, error in answers:
                future = self._futures.get(job_id)
                if future is not None:
                    _settle(future, result, error)

        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed while the model ran
            self._loop.call_soon_threadsafe(deliver)


class ProcessRunner:
    """The model in a child process (``mlhandoff.serve.model_process``), over a socket pair.

    Jobs go out as soon as they arrive; the model process batches whatever queued while it was busy.
    A job outstanding for ``kill_after_s`` means the model hangs: the process is killed
    (a thread could not be stopped). A model process that dies is restarted; ``ready`` is False meanwhile.
    """

    def __init__(
        self,
        bundle: Path,
        options: RunOptions,
        *,
        kill_after_s: float,
        log_level: str = "info",
        hidden_env: tuple[str, ...] = (),
    ) -> None:
        self._bundle = bundle
        self._options = options
        self._kill_after = kill_after_s
        self._hidden_env = set(hidden_env)
        self._log_level = log_level
        self._ids = itertools.count()
        #: job id → the caller's future (gone when the caller stops waiting)
        self._pending: dict[int, asyncio.Future[pa.Table]] = {}
        #: job id → time.monotonic() when sent, until the model process answers it (the hang watch)
        self._sent: dict[int, float] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._restarting: asyncio.Task[None] | None = None
        self._stopped = False
        self.ready = False

    async def start(self) -> None:
        """Spawn the model process and wait until it has loaded and warmed the model."""
        parent, child = socket.socketpair()
        options = self._options
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from mlhandoff.serve.model_process import main; raise SystemExit(main())",
                    *("--fd", str(child.fileno()), "--bundle", str(self._bundle)),
                    *("--threads", str(options.threads or 0), "--max-rows", str(options.max_rows)),
                    *("--max-wait-ms", str(options.max_wait_s * 1000)),
                    *("--log-level", self._log_level, "--parent", str(os.getpid())),
                    *(() if options.compiled else ("--no-compile",)),
                ],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=self._environment(),
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        try:
            reader, self._writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 26)
        except BaseException:
            parent.close()
            await self._kill()
            raise
        try:
            kind, payload = await asyncio.wait_for(_read_frame(reader), LOAD_TIMEOUT_S)
        except (asyncio.IncompleteReadError, ConnectionError):
            kind, payload = b"", b""
        except TimeoutError:
            await self._kill()
            raise ModelLoadError(
                f"the model process did not load the model within {LOAD_TIMEOUT_S:g} s"
            ) from None
        except BaseException:  # cancelled: the server stops while the model loads
            await self._kill()
            raise
        if kind != model_process.READY:
            await self._kill()
            if kind == model_process.LOAD_FAILED:
                raise ModelLoadError(_load_failure(payload))
            raise ModelLoadError(f"the model process exited while loading ({self._exit_status()})")
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_answers(reader)),
            loop.create_task(self._watch()),
        ]
        self.ready = True
        log.info("model process %d ready", self._process.pid)

    async def predict(self, table: pa.Table, deadline: float) -> pa.Table:
        if not self.ready or self._writer is None:  # restarting: fail fast, the caller decides
            raise ModelCrashed("the model process is restarting")
        job_id = next(self._ids)
        future: asyncio.Future[pa.Table] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = future
        self._sent[job_id] = time.monotonic()
        try:
            self._writer.write(model_process.job_frame(job_id, deadline, table))
            await self._writer.drain()
            return await future
        except ConnectionError:
            self._sent.pop(job_id, None)
            raise ModelCrashed("the model process is not running") from None
        finally:
            self._pending.pop(job_id, None)

    async def stop(self) -> None:
        self._stopped = True
        if self._restarting is not None:
            self._restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._restarting
        await self._kill()

    # --- internals ---------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        """The server's environment without its secrets (the model code has no use for the
        bearer token, the PII hashing key or the serialised server config with the Redis URL),
        with the native thread caps. Defence in depth, not a boundary: a process of the same
        user can read the server's own /proc/PID/environ."""
        hidden = self._hidden_env | {SERVE_CONFIG_ENV}
        env = {k: v for k, v in os.environ.items() if k not in hidden}
        return {**env, **model_process.thread_env(self._options.threads)}

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, payload = await _read_frame(reader)
                if kind == model_process.OUTPUT:
                    ids, rows, outputs = model_process.read_output(payload)
                    self._options.on_batch(outputs.num_rows)
                    for job_id, part in zip(ids, split(outputs, rows), strict=True):
                        self._settle(job_id, part, None)
                    continue
                detail = json.loads(payload)
                error: PredictError
                if kind == model_process.FAILED:
                    error = ModelFailed(detail["type"], detail["stack"])
                else:
                    error = ModelExpired("the time budget ran out")
                for job_id in detail["ids"]:
                    self._settle(job_id, None, error)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not self._stopped:
                await self._crashed("died")
        except Exception as exc:  # an answer that cannot be read: the protocol is out of step
            log.error("unreadable answer from the model process: %s", type(exc).__name__)
            await self._crashed("sent an unreadable answer")

    async def _watch(self) -> None:
        """Kill a model process that has held a job for ``kill_after_s``: the model hangs."""
        while True:
            await asyncio.sleep(min(1.0, self._kill_after / 4))
            oldest = min(self._sent.values(), default=None)
            if oldest is not None and time.monotonic() - oldest > self._kill_after:
                log.error(
                    "a model call ran over %g s: killing model process %d",
                    self._kill_after,
                    self._process.pid if self._process else -1,
                )
                await self._crashed(f"was stopped after {self._kill_after:g} s")
                return

    def _settle(self, job_id: int, result: pa.Table | None, error: BaseException | None) -> None:
        self._sent.pop(job_id, None)
        future = self._pending.get(job_id)
        if future is not None:
            _settle(future, result, error)

    async def _crashed(self, what: str) -> None:
        """Fail the jobs in flight, kill what is left of the model process, restart it."""
        if not self.ready:
            return
        self.ready = False
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        await self._kill()
        error = ModelCrashed(f"the model process {what} ({self._exit_status()})")
        log.error("%s; restarting it", error)
        self._sent.clear()
        for future in list(self._pending.values()):
            _settle(future, None, error)
        if not self._stopped:
            self._options.on_restart()
            self._restarting = asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        delay = 0.5
        while not self._stopped:
            started = time.monotonic()
            try:
                await self.start()
            except Exception as exc:
                log.error("model process restart failed: %s", _describe(exc))
                await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
                delay = min(delay * 2, 30.0)
                continue
            break
        self._restarting = None

    async def _kill(self) -> None:
        """Kill the model process, then drop the socket and whatever was still queued for it (waiting
        for a hung model process to read it would wait forever)."""
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):  # reaped later, if ever
                await asyncio.to_thread(process.wait, 10)
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None

    def _exit_status(self) -> str:
        code = self._process.poll() if self._process else None
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _load_failure(payload: bytes) -> str:
    try:
        detail = json.loads(payload)
        return f"{detail['type']}: {detail['message']}"
    except (ValueError, KeyError, TypeError):
        return "the model process failed to load the model (unreadable report)"


def _describe(exc: BaseException) -> str:
    """Our own load errors say what went wrong; anything else only by type."""
    return str(exc) if isinstance(exc, ModelLoadError) else type(exc).__name__


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    size, kind = model_process.HEADER.unpack(await reader.readexactly(model_process.HEADER.size))
    return bytes([kind]), await reader.readexactly(size)


def _settle(
    future: asyncio.Future[pa.Table] | asyncio.Future[None],
    result: object,
    error: BaseException | None,
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
