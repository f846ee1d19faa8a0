"""Dynamic micro-batching: requests that wait while the model is busy share its next call.

The model's own thread (in the model process, or in the server with ``--no-model-process``)
runs :func:`run_batches`: it takes the first waiting job, then every job queued behind it (up to
``max_rows`` rows), optionally waiting ``max_wait_s`` for more, and calls the model once. The
batch is decided where the model runs, at the moment it becomes free, so the model is never
idle while work waits, and a lone request never waits. Jobs whose deadline has passed (their
client already got a 504) are dropped instead of computed, so an overload drains. A batch that
fails is halved until the request that broke it is alone; the others still get answers.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from mlhandoff.errors import PredictError


@dataclass
class Job:
    id: int
    #: ``time.monotonic()`` after which nobody waits for the answer (the clock is system-wide).
    deadline: float
    table: pa.Table


class Replies(Protocol):
    """Where a batch's outcome goes: futures in the server, or frames to the server."""

    def outputs(self, jobs: list[Job], outputs: pa.Table) -> None: ...

    def failed(self, jobs: list[Job], error: BaseException) -> None: ...

    def expired(self, jobs: list[Job]) -> None: ...


class JobSource(Protocol):
    def take(self, timeout: float | None) -> Job | None:
        """The next job (None: no more will come), waiting up to ``timeout`` seconds (None:
        as long as it takes; 0: not at all); raises ``queue.Empty`` when none came in time."""
        ...


class QueueSource:
    """Jobs put into a ``queue.Queue`` by another thread (``None`` ends the stream)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Job | None] = queue.Queue()

    def take(self, timeout: float | None) -> Job | None:
        if timeout is not None and timeout <= 0:
            return self.queue.get_nowait()
        return self.queue.get(timeout=timeout)


def run_batches(
    jobs: JobSource,
    predict: Callable[[pa.Table], pa.Table],
    replies: Replies,
    *,
    max_rows: int = 256,
    max_wait_s: float = 0.0,
) -> None:
    """Answer jobs until the source ends; every job gets exactly one reply."""
    stop = False
    while not stop:
        first = jobs.take(None)
        if first is None:
            return
        batch, rows = [first], first.table.num_rows
        wait_until = time.monotonic() + max_wait_s
        while rows < max_rows:
            try:
                job = jobs.take(0)
            except queue.Empty:
                remaining = wait_until - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = jobs.take(remaining)
                except queue.Empty:
                    break
            if job is None:
                stop = True
                break
            batch.append(job)
            rows += job.table.num_rows
        now = time.monotonic()
        late = [j for j in batch if j.deadline <= now]
        if late:
            replies.expired(late)
            batch = [j for j in batch if j.deadline > now]
        if batch:
            _answer(batch, predict, replies)


def _answer(batch: list[Job], predict: Callable[[pa.Table], pa.Table], replies: Replies) -> None:
    tables = [j.table for j in batch]
    try:
        table = (
            tables[0]
            if len(tables) == 1
            else pa.concat_tables(tables, promote_options="permissive")
        )
        outputs = predict(table)
        if outputs.num_rows != table.num_rows:  # else requests would get each other's rows
            raise PredictError(
                f"the model answered {outputs.num_rows} rows for {table.num_rows} inputs"
            )
    except Exception as exc:
        if len(batch) == 1:
            replies.failed(batch, exc)
            return
        # Some request's rows broke the model: halve the batch until the culprit is alone, so
        # the others still get answers (log2(n) extra calls per bad request, not n).
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            now = time.monotonic()
            late = [j for j in half if j.deadline <= now]
            if late:  # their clients already got a 504
                replies.expired(late)
                half = [j for j in half if j.deadline > now]
            if half:
                _answer(half, predict, replies)
        return
    replies.outputs(batch, outputs)


def split(outputs: pa.Table, rows: list[int]) -> list[pa.Table]:
    """``outputs`` cut into consecutive parts of ``rows`` rows: each job's answer, in order."""
    parts, offset = [], 0
    for n in rows:
        parts.append(outputs.slice(offset, n))
        offset += n
    return parts
