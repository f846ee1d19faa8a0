"""Validating a file larger than memory: read it in chunks, fold each into one report.

Parquet streams with ``ParquetFile.iter_batches`` (category fields read as dictionaries, so a
domain check looks at each distinct value once); CSV streams with ``pyarrow.csv.open_csv``, every
column read as text and parsed by the validator, so a stray value deep in the file is a located
``type`` violation instead of a mid-stream conversion error. Memory stays at about one chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from mlhandoff.contract.report import ValidationReport
from mlhandoff.contract.tables import check_csv_header, read_table, suffix_kind
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract, HandoffSpec

DEFAULT_CHUNK_ROWS = 262_144
#: Rows kept (a uniform sample when the total is known) for the single-feature leakage check.
LEAKAGE_SAMPLE_ROWS = 200_000
_CSV_BYTES_PER_ROW = 64

ContractLike = DataContract | CompiledContract | HandoffSpec


def validate_file(
    path: str | Path,
    contract: ContractLike,
    *,
    max_examples: int = 5,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    allow_extra: bool = False,
    label: str | None = None,
    on_rows: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate a Parquet, CSV, JSON or JSON-lines file chunk by chunk; one report, global rows.

    With ``label``, the label column may be present and the report's ``leakage`` lists features
    that alone predict it almost perfectly (checked on a sample of at most 200,000 rows).
    """
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, got {chunk_rows}")
    compiled = _compiled(contract, max_examples)
    path = Path(path)
    total, schema, batches, text = _open(path, chunk_rows, compiled.contract)
    if label is not None and label not in schema.names:
        raise InputError(
            f"{path}: label column '{label}' is not in the data; columns are: "
            + ", ".join(schema.names[:20])
        )
    if total is not None and on_total:
        on_total(total)
    session = compiled.session(
        allow_extra=allow_extra, parse_text=text, extra_columns=[label] if label else []
    )
    sample = _Sample(total) if label else None
    seen = False
    try:
        for batch in batches:
            seen = True
            session.add(batch)
            if sample:
                sample.add(batch)
            if on_rows:
                on_rows(batch.num_rows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: {_reason(exc)}") from exc
    if not seen:
        session.add(schema.empty_table())
    report = session.finish()
    if sample and label:
        from mlhandoff.contract.leakage import feature_leakage

        report.leakage = feature_leakage(
            sample.table(schema), label, compiled.contract, parse_text=text
        )
    return report


def _compiled(contract: ContractLike, max_examples: int) -> CompiledContract:
    if isinstance(contract, CompiledContract):
        return contract
    if isinstance(contract, HandoffSpec):
        contract = contract.data_contract
    if not isinstance(contract, DataContract):
        raise InputError(
            f"contract must be a DataContract, HandoffSpec or CompiledContract, got "
            f"{type(contract).__name__}; load a spec with mlhandoff.load_spec(path) or a bundle "
            "with mlhandoff.open_bundle(path).spec"
        )
    return CompiledContract(contract, max_examples=max_examples)


def _open(
    path: Path, chunk_rows: int, contract: DataContract
) -> tuple[int | None, pa.Schema, Iterator[pa.RecordBatch], bool]:
    """Total rows (if known), schema, the chunks, and whether values arrive as text."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    kind = "parquet" if path.is_dir() else suffix_kind(path)
    if not path.is_dir() and path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if kind == "parquet":
        return _open_parquet(path, chunk_rows, contract)
    if kind == "csv":
        return _open_csv(path, chunk_rows)
    table = _read_json_lines(path, contract) if kind == "jsonl" else read_table(path)
    return table.num_rows, table.schema, iter(table.to_batches(max_chunksize=chunk_rows)), False


def _open_parquet(
    path: Path, chunk_rows: int, contract: DataContract
) -> tuple[int | None, pa.Schema, Iterator[pa.RecordBatch], bool]:
    categories = [n for n, f in contract.fields.items() if f.type == "category"]
    try:
        # pre_buffer (pyarrow's default) reads row groups ahead and holds them: memory would
        # grow with the file instead of staying at about one row group.
        if path.is_dir():
            scan = ds.ParquetFragmentScanOptions(pre_buffer=False)
            form = ds.ParquetFileFormat(default_fragment_scan_options=scan)
            dataset = ds.dataset(path, format=form)
            batches = dataset.to_batches(
                batch_size=chunk_rows, batch_readahead=1, fragment_readahead=1
            )
            return dataset.count_rows(), dataset.schema, batches, False
        file = pq.ParquetFile(path, read_dictionary=categories, pre_buffer=False)
        batches = file.iter_batches(batch_size=chunk_rows)
        return file.metadata.num_rows, file.schema_arrow, batches, False
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_reason(exc)})") from exc


def _open_csv(
    path: Path, chunk_rows: int
) -> tuple[int | None, pa.Schema, Iterator[pa.RecordBatch], bool]:
    block = min(256 << 20, max(1 << 20, chunk_rows * _CSV_BYTES_PER_ROW))
    read = pa_csv.ReadOptions(block_size=block)
    try:
        with pa_csv.open_csv(path, read_options=read) as probe:
            names = probe.schema.names
        check_csv_header(path, names)
        convert = pa_csv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True
        )
        reader = pa_csv.open_csv(path, read_options=read, convert_options=convert)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason}); re-save it as UTF-8") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot parse as CSV: {_reason(exc)}") from exc
    return None, reader.schema, iter(reader), True


def _read_json_lines(path: Path, contract: DataContract) -> pa.Table:
    """JSON lines with the contract's time fields kept as text, so the validator sees offsets.

    (Arrow's JSON reader would parse "2026-01-01T00:00:00Z" to a naive timestamp.)
    """
    times = [n for n, f in contract.fields.items() if f.type in ("timestamp", "date")]
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema([(n, pa.string()) for n in times]),
        unexpected_field_behavior="infer",
    )
    try:
        return pa_json.read_json(path, parse_options=options)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: not valid JSON lines: {exc}") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "invalid UTF8" in text or "UTF-8" in text:
        return f"not UTF-8 text ({text}); re-save the file as UTF-8"
    return text


class _Sample:
    """Rows kept for the leakage check: a seeded uniform sample of about 200,000 rows."""

    def __init__(self, total: int | None) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.kept = 0
        self.fraction = 1.0 if not total else min(1.0, LEAKAGE_SAMPLE_ROWS / total)
        self.rng = np.random.default_rng(0)

    def add(self, batch: pa.RecordBatch) -> None:
        if self.kept >= LEAKAGE_SAMPLE_ROWS:
            return
        if self.fraction < 1.0:
            batch = batch.filter(pa.array(self.rng.random(batch.num_rows) < self.fraction))
        batch = batch.slice(0, LEAKAGE_SAMPLE_ROWS - self.kept)
        self.batches.append(batch)
        self.kept += batch.num_rows

    def table(self, schema: pa.Schema) -> pa.Table:
        if not self.batches:
            return schema.empty_table()
        return pa.Table.from_batches(self.batches)
