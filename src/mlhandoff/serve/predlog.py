"""The prediction log: a sampled, non-blocking record of inputs and outputs, as Parquet files.

Requests hand records to a bounded queue and return at once; one writer thread turns them into
row groups of the current file and rotates files by size and age. A slow disk never blocks a
request: when the queue is full the record is dropped and counted. Files are written as
``*.parquet.partial`` and renamed when closed, so a reader (``mlhandoff monitor``) only ever sees
whole files. PII fields declared in the contract are redacted (null) or HMAC-hashed, never
written as they came.

Besides the inputs and outputs, each row carries what the rollout judge reads
(``rollout/logs.py``): ``model_version`` (the version that answered), ``latency_ms`` and
``status`` of its request, and ``shadow`` (true for a candidate's shadow answer, never sent).
A request the model failed on is logged with null outputs and its 5xx status.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlhandoff.serve.retention import prune

log = logging.getLogger("mlhandoff.serve")
PiiMode = Literal["redact", "hash"]


@dataclass(frozen=True)
class _Item:
    request_id: str
    at: datetime
    inputs: pa.Table
    outputs: pa.Table
    version: str
    latency_ms: float | None
    status: int
    shadow: bool


class PredictionLog:
    def __init__(
        self,
        directory: Path,
        *,
        pii_fields: list[str],
        model_version: str,
        sample_rate: float = 1.0,
        pii: PiiMode = "redact",
        pii_key: bytes = b"",
        max_queue: int = 10_000,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_seconds: float = 3600.0,
        flush_rows: int = 1000,
        flush_seconds: float = 1.0,
        on_drop: Callable[[], None] | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self.directory = directory
        #: Closed files older than this are deleted at each rotation (privacy.log_retention).
        self._retention = retention
        directory.mkdir(parents=True, exist_ok=True)
        self._pii = set(pii_fields)
        self._pii_mode = pii
        self._pii_key = pii_key
        self._version = model_version
        self._sample_rate = sample_rate
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queue)
        self._rotate_bytes = rotate_bytes
        self._rotate_seconds = rotate_seconds
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._on_drop = on_drop or (lambda: None)
        self.dropped = 0
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._opened = 0.0
        self._seq = 0
        self._thread = threading.Thread(target=self._run, name="mlhandoff-predlog", daemon=True)
        self._thread.start()

    def record(
        self,
        request_id: str,
        inputs: pa.Table,
        outputs: pa.Table,
        *,
        version: str | None = None,
        latency_ms: float | None = None,
        status: int = 200,
        shadow: bool = False,
    ) -> None:
        """Queue one request's rows (answered by ``version``, the log's own by default); never
        blocks, never raises."""
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:
            return
        item = _Item(
            request_id,
            datetime.now(UTC),
            inputs,
            outputs,
            version or self._version,
            latency_ms,
            status,
            shadow,
        )
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self._on_drop()

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued and close the current file."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        pending: list[_Item] = []
        last_flush = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self._flush_seconds)
            except queue.Empty:
                item = _TICK
            if item is None:
                self._flush(pending)
                self._close_file()
                return
            if item is not _TICK:
                pending.append(item)
            rows = sum(i.inputs.num_rows for i in pending)
            if pending and (
                rows >= self._flush_rows or time.monotonic() - last_flush >= self._flush_seconds
            ):
                self._flush(pending)
                pending = []
                last_flush = time.monotonic()

    def _flush(self, items: list[_Item]) -> None:
        if not items:
            return
        try:
            table = pa.concat_tables([self._rows(i) for i in items], promote_options="permissive")
            self._write(table)
        except Exception as exc:  # the log must never take the server down
            if isinstance(exc, OSError):  # a full disk: the machine's state, not a bug
                log.error("prediction log: could not write %d record(s): %s", len(items), exc)
            else:
                log.exception("prediction log: could not write %d record(s)", len(items))
            for _ in items:  # counted like a full buffer: the alert on drops sees both
                self.dropped += 1
                self._on_drop()
            with contextlib.suppress(Exception):
                self._close_file()  # the next flush starts a fresh file

    def _rows(self, item: _Item) -> pa.Table:
        n = item.inputs.num_rows
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            "request_id": pa.array([item.request_id] * n, pa.string()),
            "logged_at": pa.array([item.at] * n, pa.timestamp("us", tz="UTC")),
            "model_version": pa.array([item.version] * n, pa.string()),
            "latency_ms": pa.array([item.latency_ms] * n, pa.float64()),
            "status": pa.array([item.status] * n, pa.int32()),
            "shadow": pa.array([item.shadow] * n, pa.bool_()),
        }
        for name in item.inputs.column_names:
            column = item.inputs.column(name)
            columns[f"input.{name}"] = self._protect(column) if name in self._pii else column
        for name in item.outputs.column_names:
            columns[f"output.{name}"] = item.outputs.column(name)
        return pa.table(columns)

    def _protect(self, column: pa.ChunkedArray) -> pa.Array:
        if self._pii_mode == "redact":
            return pa.nulls(len(column), pa.string())
        text = pc.cast(column, pa.string()).to_pylist()
        return pa.array(
            [
                None
                if v is None
                else hmac.new(self._pii_key, v.encode(), hashlib.sha256).hexdigest()
                for v in text
            ],
            pa.string(),
        )

    def _write(self, table: pa.Table) -> None:
        if self._writer is not None and (
            (self._path is not None and self._path.stat().st_size >= self._rotate_bytes)
            or time.monotonic() - self._opened >= self._rotate_seconds
            or not self._writer.schema.equals(table.schema)
        ):
            self._close_file()
        if self._writer is None:
            self._seq += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            self._path = self.directory / f"predictions-{stamp}-{self._seq:05d}.parquet.partial"
            self._writer = pq.ParquetWriter(self._path, table.schema)
            self._opened = time.monotonic()
        self._writer.write_table(table)

    def _close_file(self) -> None:
        if self._writer is None or self._path is None:
            return
        self._writer.close()
        self._path.rename(self._path.with_suffix(""))
        self._writer = None
        self._path = None
        if self._retention is not None:
            try:
                pruned = prune(self.directory, self._retention)
            except Exception:  # the log must never take the server down
                log.exception("prediction log: could not delete files past the retention")
            else:
                if pruned.deleted:
                    log.info(
                        "prediction log: deleted %d file(s) past the retention", len(pruned.deleted)
                    )


_TICK = _Item("", datetime.min.replace(tzinfo=UTC), pa.table({}), pa.table({}), "", None, 0, False)
