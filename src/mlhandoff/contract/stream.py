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
from mlhandoff.contract.reader import DEFAULT_CHUNK_ROWS, Batches, open_batches
from mlhandoff.contract.report import ValidationReport
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract, HandoffSpec

__all__ = ["DEFAULT_CHUNK_ROWS", "LEAKAGE_SAMPLE_ROWS", "validate_file"]

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
    batches = open_batches(path, compiled.contract, chunk_rows=chunk_rows, for_validation=True)
    names = batches.schema.names
    if label is not None and label not in names:
        raise InputError(
            f"{batches.path}: label column '{label}' is not in the data; columns are: "
            + ", ".join(names[:20])
        )
    if batches.total is not None and on_total:
        on_total(batches.total)
    session = compiled.session(
        allow_extra=allow_extra, parse_text=batches.text, extra_columns=[label] if label else []
    )
    sample = _Sample(batches.total) if label else None
    seen = False
    for batch in batches:
        seen = True
        session.add(batch)
        if sample:
            sample.add(batch)
        if on_rows:
            on_rows(batch.num_rows)
    if not seen:
        session.add(batches.empty())
    report = session.finish()
    if sample and label:
        from mlhandoff.contract.leakage import feature_leakage

        report.leakage = feature_leakage(
            sample.table(batches), label, compiled.contract, parse_text=batches.text
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

    def table(self, batches: Batches) -> pa.Table:
        if not self.batches:
            return batches.empty()
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
