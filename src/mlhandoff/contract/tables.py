"""Reading tabular data from files and dataframes into one form: a pyarrow Table.

Every consumer (inference, validation, golden sets, prediction) works on Arrow so that pandas,
polars, pyarrow, CSV, Parquet and JSON records all go through the same code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from mlhandoff.errors import InputError

TableLike = Any  # pa.Table | pandas.DataFrame | polars.DataFrame | str | Path | list[dict]

_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
}


def read_table(source: TableLike, *, name: str = "data") -> pa.Table:
    """Turn ``source`` into a pyarrow Table; unreadable input is an InputError naming it."""
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if isinstance(source, str | Path):
        return _read_file(Path(source))
    if isinstance(source, list) and all(isinstance(r, dict) for r in source):
        return _from_records(source, name)
    module = type(source).__module__.split(".")[0]
    if module == "pandas":
        return _from_pandas(source, name)
    if module == "polars":
        return source.to_arrow()
    raise InputError(
        f"{name}: cannot read a {type(source).__name__}; pass a file path (.parquet, .csv, .json, "
        ".jsonl), a pandas or polars DataFrame, a pyarrow Table, or a list of records"
    )


def _from_pandas(frame: Any, name: str) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{name}: a column mixes types Arrow cannot hold together: {exc}") from exc


def _from_records(records: list[dict[str, Any]], name: str) -> pa.Table:
    try:
        return pa.Table.from_pylist(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{name}: records mix types in a column: {exc}") from exc


def suffix_kind(path: Path) -> str:
    """parquet, csv, json or jsonl, from the file name; InputError for anything else."""
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: unknown data format '{path.suffix}'; use one of {', '.join(_SUFFIXES)}"
        )
    return kind


def check_csv_header(path: Path, names: list[str]) -> None:
    """Refuse a header that is one column holding several: the file uses another delimiter."""
    if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        raise InputError(
            f"{path}: the header '{names[0]}' looks like one column holding several: "
            "mlhandoff reads comma-separated files; convert the delimiter to ','"
        )


def _read_file(path: Path) -> pa.Table:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        return _read_parquet(path)
    kind = suffix_kind(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if kind == "parquet":
        return _read_parquet(path)
    if kind == "csv":
        return _read_csv(path)
    return _read_json(path, lines=kind == "jsonl")


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc


def _read_csv(path: Path) -> pa.Table:
    try:
        table = pa_csv.read_csv(path)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason}); re-save it as UTF-8") from exc
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot parse as CSV: {exc}") from exc
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type)]
    if binary:
        raise InputError(
            f"{path}: column(s) {', '.join(binary[:5])} are not UTF-8 text; re-save the file as UTF-8"
        )
    check_csv_header(path, table.column_names)
    return table


def _read_json(path: Path, lines: bool) -> pa.Table:
    try:
        if lines:
            return pa_json.read_json(path)
        records = json.loads(path.read_text(encoding="utf-8"))
    except (pa.ArrowInvalid, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc
    if isinstance(records, dict) and isinstance(records.get("instances"), list):
        records = records["instances"]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{path}: expected a JSON array of records (objects)")
    return _from_records(records, str(path))
