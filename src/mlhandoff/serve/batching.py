"""Dynamic micro-batching: concurrent requests share one model call.

One collector task takes the first waiting request, then everything else already queued (up to
``max_rows``), optionally waiting ``max_wait_ms`` for more, and runs the model once in a single
worker thread. At concurrency 1 nothing waits; under load, batches form while the previous one
runs, so throughput approaches the model's batched speed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

PredictFn = Callable[[pa.Table], pa.Table]


@dataclass
class _Job:
    table: pa.Table
    future: asyncio.Future[pa.Table]


class MicroBatcher:
    def __init__(
        self,
        predict: PredictFn,
        *,
        max_rows: int = 256,
        max_wait_ms: float = 2.0,
        pending: Callable[[], int] = lambda: 1,
        on_batch: Callable[[int], None] | None = None,
        threads: int | None = 1,
    ) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait_ms / 1000
        self._pending = pending
        self._last_jobs = 0
        self._on_batch = on_batch or (lambda _: None)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="mlhandoff-model",
            initializer=_limit_threads,
            initargs=(threads,),
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        while not self._queue.empty():  # answer queued requests instead of leaving them hanging
            _settle(self._queue.get_nowait(), error=RuntimeError("the server is shutting down"))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, table: pa.Table) -> pa.Table:
        """Outputs for ``table``'s rows; raises whatever the model raised."""
        future: asyncio.Future[pa.Table] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(table, future))
        return await future

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            rows = jobs[0].table.num_rows
            deadline = loop.time() + self._max_wait
            while rows < self._max_rows:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    # Wait only under load (the previous call served several requests, or some
                    # are being parsed): a lone request never waits, and under load the batch
                    # fills instead of splitting into two half-batches that take turns.
                    remaining = deadline - loop.time()
                    if remaining <= 0 or (self._last_jobs <= 1 and self._pending() <= 0):
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                jobs.append(job)
                rows += job.table.num_rows
            self._last_jobs = len(jobs)
            jobs = [j for j in jobs if not j.future.cancelled()]
            if not jobs:
                continue
            self._on_batch(rows)
            try:
                outputs = await loop.run_in_executor(
                    self._executor, self._run, [j.table for j in jobs]
                )
            except Exception as exc:
                if len(jobs) == 1:
                    _settle(jobs[0], error=exc)
                    continue
                # One request's rows broke the model: run each alone so the others still succeed.
                for job in jobs:
                    try:
                        alone = await loop.run_in_executor(self._executor, self._run, [job.table])
                    except Exception as single:
                        _settle(job, error=single)
                    else:
                        _settle(job, result=alone)
                continue
            offset = 0
            for job in jobs:
                n = job.table.num_rows
                if not job.future.done():
                    job.future.set_result(outputs.slice(offset, n))
                offset += n

    def _run(self, tables: list[pa.Table]) -> pa.Table:
        table = (
            tables[0]
            if len(tables) == 1
            else pa.concat_tables(tables, promote_options="permissive")
        )
        return self._predict(table)


def _limit_threads(threads: int | None) -> None:
    """Cap the model's native thread pools (OpenMP, BLAS) in the model thread.

    Requests already run concurrently; a model that also spreads each call over every core
    oversubscribes the CPU: on 2 shared cores a HistGradientBoosting call took 55 ms with two
    OpenMP threads and 8.6 ms with one.
    """
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def _settle(
    job: _Job, *, result: pa.Table | None = None, error: BaseException | None = None
) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
