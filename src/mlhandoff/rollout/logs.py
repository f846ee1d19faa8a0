"""The prediction log as the judge reads it: which version answered each request, when, how
fast, with what status and output; delayed labels joined on a key.

Columns (``serve/predlog.py`` writes them; one row per predicted row, a request's rows share
its ``request_id``)::

    model_version   str        the version that answered (the candidate's spec version, or the
                               baseline's); shadow answers carry their own version too
    logged_at       timestamp  when the answer was logged (UTC)
    request_id      str
    latency_ms      float      the request's latency (latency rules; absent: no data)
    status          int        the HTTP status; a request the model failed logs its rows
                               with null outputs (error_rate; absent: no data)
    shadow          bool       a candidate's shadow answer (never sent to the client)
    input.<field>   the request's fields (PII redacted or hashed)
    output.<name>   the answer's outputs

Only whole files (``*.parquet``) are read: the log writes ``*.parquet.partial`` and renames a
file when it is complete. A file that cannot be read is skipped and named in the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlhandoff.contract.tables import read_table
from mlhandoff.errors import InputError

VERSION = "model_version"
LOGGED_AT = "logged_at"
REQUEST_ID = "request_id"
LATENCY = "latency_ms"
STATUS = "status"
LABEL_PREFIX = "label."


@dataclass
class PredictionLog:
    table: pa.Table
    files: int
    skipped: list[str] = field(default_factory=list)


def read_prediction_log(
    directory: Path, columns: set[str], since: np.datetime64 | None = None
) -> PredictionLog:
    """The log's rows (the wanted columns that exist, plus version and time) from a directory of
    Parquet files, or one file."""
    directory = Path(directory)
    if directory.is_file():
        paths = [directory]
    elif directory.is_dir():
        paths = sorted(p for p in directory.rglob("*.parquet") if p.is_file())
    else:
        raise InputError(f"{directory}: no such prediction log directory")
    wanted = {VERSION, LOGGED_AT} | columns
    tables: list[pa.Table] = []
    skipped: list[str] = []
    for path in paths:
        try:
            names = pq.read_schema(path).names
            if VERSION not in names or LOGGED_AT not in names:
                skipped.append(f"{path.name}: no {VERSION} / {LOGGED_AT} column")
                continue
            table = pq.read_table(path, columns=[c for c in names if c in wanted])
        except (OSError, pa.ArrowException) as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        table = table.set_column(
            table.schema.get_field_index(LOGGED_AT),
            LOGGED_AT,
            pc.cast(table.column(LOGGED_AT), pa.timestamp("us", tz="UTC")),
        )
        tables.append(table)
    if not tables:
        why = f" ({len(skipped)} unreadable: {skipped[0]})" if skipped else ""
        raise InputError(f"{directory}: no prediction log files (*.parquet) to read{why}")
    table = pa.concat_tables(tables, promote_options="permissive")
    if since is not None:
        times = table.column(LOGGED_AT).cast(pa.int64()).to_numpy()
        table = table.filter(pa.array(times >= since.astype("datetime64[us]").astype(np.int64)))
    return PredictionLog(table, len(tables), skipped)


def join_labels(table: pa.Table, labels_path: Path, join_key: str, label: str) -> pa.Table:
    """The log with ``label.<label>`` added from a labels file (null where no label arrived).

    The key is looked up as ``input.<key>`` in the log (or as it is named). Labels that match
    no logged row at all, or that repeat a key, are an InputError: a wrong key or file.
    """
    labels = read_table(Path(labels_path), name=str(labels_path))
    for column in (join_key, label):
        if column not in labels.column_names:
            raise InputError(
                f"{labels_path}: no column '{column}' (it has: {', '.join(labels.column_names)})"
            )
    logged = f"input.{join_key}" if f"input.{join_key}" in table.column_names else join_key
    if logged not in table.column_names:
        raise InputError(
            f"the prediction log has no column '{logged}' to join labels on: --join-key names a "
            "data-contract field the log keeps (PII fields are redacted there)"
        )
    keys = labels.column(join_key).cast(pa.string()).combine_chunks()
    counts = pc.value_counts(keys)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(repeated):
        raise InputError(
            f"{labels_path}: {len(repeated)} {join_key} value(s) have more than one label "
            f"(first: {', '.join(map(str, repeated.slice(0, 3).to_pylist()))})"
        )
    log_keys = table.column(logged).cast(pa.string())
    index = pc.index_in(log_keys, value_set=keys)
    matched = int(pc.sum(pc.is_valid(index)).as_py() or 0)
    if matched == 0:
        shown = ", ".join(map(str, keys.slice(0, 3).to_pylist()))
        raise InputError(
            f"{labels_path}: none of its {len(keys):,} labels joins the log on {join_key} "
            f"(labels have e.g. {shown}; the log's column is '{logged}'): check --join-key"
        )
    joined = pc.take(labels.column(label), index)
    return table.append_column(LABEL_PREFIX + label, joined)
