"""Reading what the monitor judges: a prediction-log directory (``serve/predlog.py``) or a file.

The server writes ``predictions-<UTC stamp>-<seq>.parquet`` files with the columns
``request_id``, ``logged_at`` (UTC), ``model_version``, ``input.<field>`` and ``output.<name>``;
it writes ``*.parquet.partial`` while a file is open and renames it when whole, so only whole
files are read. Any other Parquet or CSV file works too, with columns named as the contract's
fields and outputs. Files are read one record batch at a time (memory stays at about one
batch); a file that cannot be read — truncated, not Parquet, not UTF-8 — is skipped and
reported, and what was counted from it is dropped with it, so nothing else is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlhandoff.contract.reader import open_batches
from mlhandoff.errors import InputError
from mlhandoff.spec.models import HandoffSpec

LOG_TIME = "logged_at"
INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."
_READABLE = (".parquet", ".pq", ".csv")


class Unreadable(Exception):
    """A file that cannot be read as a table: the monitor skips it and says why."""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class LogBatch:
    """One record batch: microseconds since the epoch (UTC) and the columns by role."""

    micros: np.ndarray
    inputs: dict[str, pa.Array]
    outputs: dict[str, pa.Array]
    batch: pa.RecordBatch

    def column(self, name: str) -> pa.Array | None:
        """A column as written, or a field's column in a prediction log (``input.<name>``)."""
        for column in (name, INPUT_PREFIX + name):
            if column in self.batch.schema.names:
                return self.batch.column(column)
        return None


def log_files(data: Path) -> list[Path]:
    """The files to read: a directory's whole Parquet/CSV files in name order, or one file."""
    if not data.exists():
        raise InputError(f"{data}: not found; pass a prediction-log directory or a data file")
    if data.is_file():
        return [data]
    files = sorted(p for p in data.iterdir() if p.is_file() and p.suffix.lower() in _READABLE)
    if not files:
        partial = [p.name for p in data.iterdir() if p.name.endswith(".partial")]
        more = f" ({len(partial)} still being written: *.partial)" if partial else ""
        raise InputError(f"{data}: no .parquet or .csv files{more}")
    return files


class LogReader:
    """Reads one file's batches as :class:`LogBatch`; bad input raises InputError naming it."""

    def __init__(
        self,
        spec: HandoffSpec,
        output_names: list[str],
        *,
        time_column: str | None = None,
        timezone: str | None = None,
        chunk_rows: int = 262_144,
        categorical: frozenset[str] = frozenset(),
        extra: tuple[str, ...] = (),
    ) -> None:
        self.spec = spec
        self.outputs = output_names
        self.time_column = time_column
        self.timezone = timezone
        self.chunk_rows = chunk_rows
        #: Input fields read as dictionaries from Parquet; other columns to read (a join key).
        self.categorical = categorical
        self.extra = {c for name in extra for c in (name, INPUT_PREFIX + name)}
        self.layout: str | None = None  # "prediction log" or "table", from the first file

    def read(self, path: Path) -> Iterator[LogBatch]:
        """The file's batches; :class:`Unreadable` when the file cannot be read (skip it),
        InputError when it reads but cannot be windowed (no timestamp column, no timezone)."""
        try:
            if path.suffix.lower() in (".parquet", ".pq"):
                schema, batches = self._parquet(path)
            else:
                opened = open_batches(path, chunk_rows=self.chunk_rows)
                schema, batches = opened.schema, iter(opened)
        except (InputError, pa.ArrowException, OSError) as exc:
            raise Unreadable(str(exc)) from exc
        inputs, outputs = self._columns(schema)
        time_column = self._time_column(path, schema)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (InputError, pa.ArrowException, OSError) as exc:
                raise Unreadable(str(exc)) from exc
            if batch.num_rows == 0:
                continue
            yield LogBatch(
                self._micros(path, batch.column(time_column), time_column),
                {name: batch.column(column) for name, column in inputs.items()},
                {name: batch.column(column) for name, column in outputs.items()},
                batch,
            )

    def _parquet(self, path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Only the columns the monitor reads (not request ids, say), categories as dictionaries
        so each distinct value is looked up once; row group by row group."""
        schema = pq.read_schema(path)
        inputs, outputs = self._columns(schema)
        wanted = {*inputs.values(), *outputs.values(), *self.extra}
        wanted.add(self._time_column(path, schema))
        columns = [c for c in schema.names if c in wanted]
        dictionary = [c for name, c in inputs.items() if name in self.categorical]
        file = pq.ParquetFile(path, read_dictionary=dictionary, pre_buffer=False)
        return schema, file.iter_batches(batch_size=self.chunk_rows, columns=columns)

    def _columns(self, schema: pa.Schema) -> tuple[dict[str, str], dict[str, str]]:
        """Input field → column and output → column: ``input.x`` / ``output.y`` in a prediction
        log, ``x`` / ``y`` in a plain table."""
        log = any(c.startswith(INPUT_PREFIX) for c in schema.names)
        self.layout = self.layout or ("prediction log" if log else "table")
        fields = self.spec.data_contract.fields
        if log:
            inputs = {
                c.removeprefix(INPUT_PREFIX): c for c in schema.names if c.startswith(INPUT_PREFIX)
            }
            outputs = {
                c.removeprefix(OUTPUT_PREFIX): c
                for c in schema.names
                if c.startswith(OUTPUT_PREFIX)
            }
        else:
            inputs = {c: c for c in schema.names if c in fields}
            outputs = {c: c for c in schema.names if c in self.outputs}
        return (
            {n: c for n, c in inputs.items() if n in fields},
            {n: c for n, c in outputs.items() if n in self.outputs},
        )

    def _time_column(self, path: Path, schema: pa.Schema) -> str:
        if self.time_column is not None:
            if self.time_column not in schema.names:
                raise InputError(
                    f"{path}: no column '{self.time_column}' (--time-column); columns are: "
                    + ", ".join(schema.names[:20])
                )
            return self.time_column
        if LOG_TIME in schema.names:
            return LOG_TIME
        for name, f in self.spec.data_contract.fields.items():
            for column in (name, INPUT_PREFIX + name):
                if f.type == "timestamp" and column in schema.names:
                    return column
        raise InputError(
            f"{path}: no timestamp column to window by ({LOG_TIME}, or a timestamp field of the "
            "contract): name one with --time-column"
        )

    def _micros(self, path: Path, column: pa.Array, name: str) -> np.ndarray:
        if not pa.types.is_timestamp(column.type):
            raise InputError(
                f"{path}: column '{name}' holds {column.type}, not timestamps; windows need times"
            )
        if column.type.tz is None:
            if self.timezone is None:
                raise InputError(
                    f"{path}: column '{name}' holds timestamps without a timezone: write them with "
                    "their offset (2026-01-01T00:00:00Z), or pass --timezone (e.g. UTC) to say "
                    "which zone they are in"
                )
            column = pc.assume_timezone(
                column, timezone=self.timezone, ambiguous="earliest", nonexistent="earliest"
            )
        micros = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
        if micros.null_count:
            raise InputError(f"{path}: column '{name}' has {micros.null_count} empty time(s)")
        return np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.int64)
