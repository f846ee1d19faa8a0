"""Validating a file larger than memory: read it in chunks, fold each into one report.

The file is read by :func:`~mlhandoff.contract.reader.open_batches`, the same reader as
``read_table`` (so ``pack --sample`` sees what ``validate`` saw), Parquet category fields as
dictionaries (a domain check looks at each distinct value once). CSV values the contract could
not type stay text and are parsed by the validator, so a stray value deep in the file is a
located ``type`` violation instead of a mid-stream conversion error. Memory stays at about one
chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from mlhandoff.contract.coerce import is_text
from mlhandoff.contract.ids import repeat_rows
from mlhandoff.contract.reader import DEFAULT_CHUNK_ROWS, open_batches
from mlhandoff.contract.report import ValidationReport
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract, HandoffSpec

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "LEAKAGE_SAMPLE_ROWS",
    "LeakageSample",
    "check_label",
    "file_repeats",
    "validate_file",
]

#: Rows kept (a uniform sample when the total is known) for the single-feature leakage check.
LEAKAGE_SAMPLE_ROWS = 200_000

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
    compiled = _compiled(contract, max_examples)
    repeats = file_repeats(path, compiled.contract, chunk_rows)
    batches = open_batches(path, compiled.contract, chunk_rows=chunk_rows, for_validation=True)
    check_label(batches.path, batches.schema.names, label)
    if batches.total is not None and on_total:
        on_total(batches.total)
    session = compiled.session(
        allow_extra=allow_extra,
        parse_text=batches.text,
        extra_columns=[label] if label else [],
        repeats=repeats,
    )
    sample = LeakageSample(batches.total) if label else None
    seen = 0
    for batch in batches:
        session.add(batch)
        if sample and sample.kept < LEAKAGE_SAMPLE_ROWS:
            sample.keep(sample.draw(batch, seen))
        seen += batch.num_rows
        if on_rows:
            on_rows(batch.num_rows)
    if not seen:
        session.add(batches.empty())
    report = session.finish()
    if sample and label:
        from mlhandoff.contract.leakage import feature_leakage

        report.leakage = feature_leakage(
            sample.table(batches.empty()), label, compiled.contract, parse_text=batches.text
        )
    return report


def check_label(path: Path, names: list[str], label: str | None) -> None:
    """InputError when the label column given for the leakage check is not in the data."""
    if label is not None and label not in names:
        raise InputError(
            f"{path}: label column '{label}' is not in the data; columns are: "
            + ", ".join(names[:20])
        )


def file_repeats(
    path: str | Path, contract: DataContract, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> dict[str, np.ndarray] | None:
    """For each ``id: true`` field of ``contract`` in the file, the rows that repeat an id of
    an earlier row (None when the contract has no ids). One extra pass that holds the id
    columns, and only them, in memory (for Parquet only they are read)."""
    ids = [name for name, spec in contract.fields.items() if spec.id]
    if not ids:
        return None
    batches = open_batches(path, contract, chunk_rows=chunk_rows, columns=ids)
    present = [name for name in ids if name in batches.schema.names]
    chunks: dict[str, list[pa.Array]] = {name: [] for name in present}
    rows = 0
    for batch in batches:
        for name in present:
            chunks[name].append(batch.column(name))
        rows += batch.num_rows
    numbers = np.arange(rows, dtype=np.int64)
    return {name: repeat_rows(_one_column(chunks[name]), numbers) for name in present}


def _one_column(chunks: list[pa.Array]) -> pa.Array:
    """One array of a column's chunks; as text when chunks disagree on the type (CSV values
    typed in one chunk and left as text in another)."""
    if not chunks:
        return pa.array([], pa.string())
    decoded = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in chunks]
    if len({c.type for c in decoded}) > 1:
        decoded = [c.cast(pa.string()) for c in decoded]
    return pa.chunked_array(decoded).combine_chunks()


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


class LeakageSample:
    """Rows kept for the leakage check: a seeded uniform sample of about 200,000 rows.

    Row ``i`` of the data is drawn when the ``i``-th number of one seeded stream is below the
    sampled fraction, so a chunk or partition draws its rows knowing only where it starts (the
    stream is advanced to its first row): every engine and every chunking keeps the same rows.
    """

    def __init__(self, total: int | None) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.kept = 0
        self.fraction = 1.0 if not total else min(1.0, LEAKAGE_SAMPLE_ROWS / total)

    def draw(self, batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
        """The rows of ``batch`` (its first row is row ``offset`` of the data) in the sample."""
        if self.fraction < 1.0:
            bits = np.random.PCG64(0)  # default_rng(0)'s stream, advanced to row ``offset``
            bits.advance(offset)
            draws = np.random.Generator(bits).random(batch.num_rows)
            batch = batch.filter(pa.array(draws < self.fraction))
        return batch.slice(0, LEAKAGE_SAMPLE_ROWS)

    def keep(self, batch: pa.RecordBatch) -> None:
        """Keep drawn rows, in row order, until the sample is full."""
        if self.kept >= LEAKAGE_SAMPLE_ROWS:
            return
        batch = batch.slice(0, LEAKAGE_SAMPLE_ROWS - self.kept)
        self.batches.append(batch)
        self.kept += batch.num_rows

    def table(self, empty: pa.Table) -> pa.Table:
        if not self.batches:
            return empty
        tables = [pa.Table.from_batches([b]) for b in self.batches]
        text = {f.name for t in tables for f in t.schema if is_text(f.type)}
        try:
            return pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # typed in one chunk, text in another
            return pa.concat_tables(
                [t.cast(_text_where(t.schema, text)) for t in tables], promote_options="permissive"
            )


def _text_where(schema: pa.Schema, names: set[str]) -> pa.Schema:
    return pa.schema(
        [f.with_type(pa.string()) if f.name in names else f for f in schema], schema.metadata
    )
