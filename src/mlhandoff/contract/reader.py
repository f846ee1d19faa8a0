"""The one way a data file is read: :func:`open_batches` streams it as record batches typed as
the data contract says; :func:`~mlhandoff.contract.tables.read_table` is their concatenation and
``validate_file`` validates them, so ``validate x`` and ``pack --sample x`` see the same values.

Per format:

* Parquet (a file or a directory of files) carries its own types.
* CSV holds only text: the contract's fields are read as text and typed by the contract
  (:mod:`~mlhandoff.contract.coerce`), never guessed by Arrow; other columns (the label,
  baselines, slices) as Arrow infers them. A value that does not convert leaves its column as
  text in that batch, so the validator reports the row instead of the reader failing mid-file.
* JSON (an array of records, or ``{"instances": [...]}``) and JSON lines carry numbers, booleans
  and text; the contract's timestamp and date fields are read as text and typed by the contract
  (Arrow's JSON reader would otherwise read ``"2026-01-01T00:00:00Z"`` as a naive timestamp).

Without a contract (``init``, which infers one) every column is read as the format's reader
infers it. Memory stays at about one chunk for Parquet and CSV; JSON is read whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from mlhandoff.contract.coerce import TEXT, TIMES, is_text, typed_text
from mlhandoff.contract.types import arrow_type
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract, FieldSpec

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Batches",
    "open_batches",
    "parquet_dataset",
    "records_table",
    "suffix_kind",
    "type_columns",
]

DEFAULT_CHUNK_ROWS = 262_144
_CSV_BYTES_PER_ROW = 64
_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
}


@dataclass
class Batches:
    """An opened data file: iterate it for batches typed as the contract says.

    ``schema`` is the file's columns as read, before typing; ``total`` its row count when the
    format records one; ``text`` whether values arrived as text (CSV): the validator then parses
    whatever typing left as text, to point at the rows that break the type.
    """

    path: Path
    schema: pa.Schema
    total: int | None
    text: bool
    _raw: Iterator[pa.RecordBatch]
    _contract: DataContract | None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._read(self._raw):
            yield type_columns(batch, self._contract, csv=self.text)

    def table(self) -> pa.Table:
        """Every batch in one table, typed as a whole (chunks never disagree on a type)."""
        table = pa.Table.from_batches(list(self._read(self._raw)), schema=self.schema)
        return type_columns(table, self._contract, csv=self.text)

    def empty(self) -> pa.Table:
        """No rows, the columns typed as the batches would be."""
        return type_columns(self.schema.empty_table(), self._contract, csv=self.text)

    def _read(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        try:
            yield from batches
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{self.path}: {_reason(exc)}") from exc


def open_batches(
    path: str | Path,
    contract: DataContract | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    for_validation: bool = False,
    columns: list[str] | None = None,
) -> Batches:
    """Open a Parquet, CSV, JSON or JSON-lines file (or a directory of Parquet files) for
    reading in batches of about ``chunk_rows`` rows; bad files are an InputError naming them.

    ``for_validation`` reads for the validator alone: Parquet category fields as dictionaries
    (a domain check looks at each distinct value once) and CSV columns the contract does not
    name as text (nothing checks their values, and a type Arrow guesses from the first block
    could fail on a later one).

    ``columns`` keeps only those of the named columns the file has (Parquet reads no others).
    """
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, got {chunk_rows}")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    kind = "parquet" if path.is_dir() else suffix_kind(path)
    if not path.is_dir() and path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    total: int | None
    if kind == "parquet":
        fields = contract.fields if contract and for_validation else {}
        categories = [n for n, f in fields.items() if f.type == "category"]
        total, schema, raw = _open_parquet(path, chunk_rows, categories, columns)
    elif kind == "csv":
        total, schema, raw = _open_csv(path, chunk_rows, contract, for_validation)
    else:
        times = [n for n, f in contract.fields.items() if f.type in TIMES] if contract else None
        table = _read_json(path, times, kind)
        total, schema, raw = table.num_rows, table.schema, iter(table.to_batches(chunk_rows))
    if columns is not None and kind != "parquet":
        raw = (b.select([c for c in columns if c in b.schema.names]) for b in raw)
    if columns is not None:
        schema = pa.schema([f for f in schema if f.name in columns])
    return Batches(path, schema, total, kind == "csv", raw, contract)


def type_columns(data: Any, contract: DataContract | None, *, csv: bool = False) -> Any:
    """``data`` (a RecordBatch or Table) with the contract's columns typed as it says where the
    source had no type for them: text (from CSV every field but text ones; from anything else
    timestamps and dates, which JSON has no type for) when every value converts (see
    :func:`~mlhandoff.contract.coerce.typed_text`), and columns of nothing but nulls."""
    if contract is None:
        return data
    for i, name in enumerate(data.schema.names):
        spec = contract.fields.get(name)
        t = data.schema.field(i).type
        if spec is None:
            continue
        if pa.types.is_null(t):
            data = data.set_column(i, name, pa.nulls(len(data), arrow_type(spec)))
        elif is_text(t) and (spec.type in TIMES or (csv and spec.type not in TEXT)):
            column = data.column(i)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            typed = typed_text(column, spec)
            if typed is not None:
                data = data.set_column(i, name, typed)
    return data


def records_table(records: Any, name: str) -> pa.Table:
    """JSON records (a list of objects) as a table; values that mix types are an InputError."""
    if isinstance(records, dict) and isinstance(records.get("instances"), list):
        records = records["instances"]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{name}: expected a JSON array of records (objects)")
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


def _open_parquet(
    path: Path, chunk_rows: int, dictionary: list[str], columns: list[str] | None = None
) -> tuple[int, pa.Schema, Iterator[pa.RecordBatch]]:
    try:
        if path.is_dir():
            dataset = parquet_dataset(path)
            batches = dataset.to_batches(
                columns=_present(columns, dataset.schema),
                batch_size=chunk_rows,
                batch_readahead=1,
                fragment_readahead=1,
            )
            return dataset.count_rows(), dataset.schema, batches
        # pre_buffer=False: see parquet_dataset
        file = pq.ParquetFile(path, read_dictionary=dictionary, pre_buffer=False)
        chunks = file.iter_batches(
            batch_size=chunk_rows, columns=_present(columns, file.schema_arrow)
        )
        return file.metadata.num_rows, file.schema_arrow, chunks
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_reason(exc)})") from exc


def parquet_dataset(path: Path, dictionary: list[str] | None = None) -> ds.Dataset:
    """A Parquet file, a directory of them or a hive-partitioned dataset (``key=value``
    folders become columns) as one pyarrow dataset, its files in name order; ``dictionary``:
    columns read as dictionaries."""
    # pre_buffer (pyarrow's default) reads row groups ahead and holds them: memory would grow
    # with the file instead of staying at about one row group.
    scan = ds.ParquetFragmentScanOptions(pre_buffer=False)
    read = ds.ParquetReadOptions(dictionary_columns=dictionary or [])
    form = ds.ParquetFileFormat(read_options=read, default_fragment_scan_options=scan)
    return ds.dataset(path, format=form, partitioning="hive")


def _present(columns: list[str] | None, schema: pa.Schema) -> list[str] | None:
    return None if columns is None else [c for c in columns if c in schema.names]


def _open_csv(
    path: Path, chunk_rows: int, contract: DataContract | None, all_text: bool
) -> tuple[None, pa.Schema, Iterator[pa.RecordBatch]]:
    """The contract's fields as text (every column with ``all_text``), the others as Arrow
    infers them."""
    block = min(256 << 20, max(1 << 20, chunk_rows * _CSV_BYTES_PER_ROW))
    read = pa_csv.ReadOptions(block_size=block)
    try:
        with pa_csv.open_csv(path, read_options=read) as probe:
            names = probe.schema.names
        _check_csv_header(path, names)
        fields = contract.fields if contract else {}
        text = [n for n in names if all_text or n in fields]
        convert = pa_csv.ConvertOptions(
            column_types={n: pa.string() for n in text}, strings_can_be_null=True
        )
        reader = pa_csv.open_csv(path, read_options=read, convert_options=convert)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason}); re-save it as UTF-8") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot parse as CSV: {_reason(exc)}") from exc
    binary = [f.name for f in reader.schema if pa.types.is_binary(f.type)]
    if binary:
        raise InputError(
            f"{path}: column(s) {', '.join(binary[:5])} are not UTF-8 text; re-save the file as UTF-8"
        )
    return None, reader.schema, iter(reader)


def _check_csv_header(path: Path, names: list[str]) -> None:
    """Refuse a header that is one column holding several: the file uses another delimiter."""
    if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        raise InputError(
            f"{path}: the header '{names[0]}' looks like one column holding several: "
            "mlhandoff reads comma-separated files; convert the delimiter to ','"
        )


def _read_json(path: Path, times: list[str] | None, kind: str) -> pa.Table:
    """A JSON array of records, or JSON lines with the contract's time fields kept as text
    (without a contract, ``times=None``: the columns Arrow reads as timestamps, typed from
    their text, since Arrow drops the offset of ``"…Z"``)."""
    try:
        if kind == "json":
            return records_table(json.loads(path.read_text(encoding="utf-8")), str(path))
        if times is not None:
            return _json_lines(path, times)
        table = _json_lines(path, [])
        guessed = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if not guessed:
            return table
        fields = {n: FieldSpec(type="timestamp") for n in guessed}
        return type_columns(_json_lines(path, guessed), DataContract(fields=fields))
    except (pa.ArrowInvalid, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc


def _json_lines(path: Path, text: list[str]) -> pa.Table:
    """Arrow's JSON-lines reader with the ``text`` columns read as strings; columns in the order
    of the first record (Arrow puts explicitly typed ones first, and adds them when absent)."""
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema([(n, pa.string()) for n in text]),
        unexpected_field_behavior="infer",
    )
    table = pa_json.read_json(path, parse_options=options)
    if not text:
        return table
    all_null = [n for n in text if table.column(n).null_count == table.num_rows]
    if all_null:
        try:
            inferred = set(_json_lines(path, []).column_names)
        except pa.ArrowInvalid:  # the file types a column two ways: nothing to tell by
            inferred = set(all_null)
        table = table.drop_columns([n for n in all_null if n not in inferred])
    with path.open(encoding="utf-8") as lines:
        first = next((line for line in lines if line.strip()), "{}")
    keys = [k for k in json.loads(first) if k in table.column_names]
    return table.select(keys + [n for n in table.column_names if n not in keys])


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "invalid UTF8" in text or "UTF-8" in text:
        return f"not UTF-8 text ({text}); re-save the file as UTF-8"
    return text
