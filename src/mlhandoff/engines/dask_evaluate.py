"""Evaluation on Dask: each partition is validated and scored on a worker, metrics on the client.

A worker opens the bundle from its path (the integrity check runs there, once per worker
process and bundle version), loads the model and scores its partition; it returns the partial
validation report, the model's outputs and the label, query and slice columns. Those are small
(a few numbers a row), so the client concatenates them in partition order and computes the
metrics and their bootstrap intervals with the local engine's code and seed: the report equals
the local one wherever the model scores a row the same in any batch (row-wise models do).
Latency is measured on the client, on the first rows of the data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mlhandoff.bundle.bundle import Bundle, open_bundle
from mlhandoff.bundle.manifest import MANIFEST_NAME
from mlhandoff.contract.reader import DEFAULT_CHUNK_ROWS, type_columns
from mlhandoff.contract.validate import CompiledContract, ValidationSession
from mlhandoff.engines.base import Progress
from mlhandoff.engines.dask_validate import local_repeats, part_repeats
from mlhandoff.engines.partitions import Part, parquet_parts
from mlhandoff.errors import InputError, PredictError
from mlhandoff.evaluate.acceptance import evaluate_sets
from mlhandoff.evaluate.data import model_outputs, require_column
from mlhandoff.evaluate.report import AcceptanceReport
from mlhandoff.evaluate.run import (
    add_latency,
    classes_of,
    eval_columns,
    eval_set,
    evaluate_bundle,
    predict_checked,
)

if TYPE_CHECKING:
    from mlhandoff.engines.dask_engine import DaskEngine

#: Bundles this worker process opened: (path, manifest's mtime and size) → the bundle.
_OPENED: dict[tuple[str, int, int], Bundle] = {}


@dataclass
class Scored:
    """One partition: its partial report, and unless a rule broke there its outputs and the
    columns the metrics read (or the model's error)."""

    session: ValidationSession
    columns: pa.Table
    raw: dict[str, np.ndarray] | None
    classes: Any
    error: PredictError | None = None


def score_part(
    part: Part,
    root: str,
    contract: CompiledContract,
    wanted: list[str],
    chunk_rows: int,
    repeats: dict[str, Any] | None,
) -> Scored:
    """Validate, then score, one partition on a worker."""
    table = type_columns(
        pa.Table.from_batches(list(part.batches(chunk_rows)), schema=part.schema), contract.contract
    )
    session = contract.session(allow_extra=True, repeats=local_repeats(part, repeats))
    session.add(table)
    columns = table.select([c for c in wanted if c in table.column_names])
    if session.broken:  # the whole evaluation stops at the contract: nothing to score
        return Scored(session, columns, None, None)
    predictor = _bundle(root).predictor()
    try:
        raw = predict_checked(predictor, table, "the model")
    except PredictError as exc:
        return Scored(session, columns, None, None, exc)
    return Scored(session, columns, raw, classes_of(predictor))


def evaluate_on_dask(
    engine: DaskEngine,
    bundle: str | Path,
    data: str | Path | None = None,
    *,
    baseline: str | Path | None = None,
    model: str | Path | None = None,
    latency: bool = True,
    resamples: int | None = None,
    progress: Progress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> AcceptanceReport:
    """``evaluate_bundle`` on the cluster (see the module's docstring)."""
    if data is None:  # the packed evaluation sample: small, scored here
        return evaluate_bundle(bundle, None, latency=latency, resamples=resamples)
    if baseline is not None or model is not None:
        raise InputError(
            "--baseline and --model are not supported by the dask engine; use --engine local"
        )
    b = open_bundle(bundle)
    spec = b.spec
    contract = CompiledContract(spec.data_contract)
    schema, parts = parquet_parts(data, partition_rows=engine.partition_rows)
    name = str(data)
    repeats = part_repeats(parts, contract, chunk_rows)
    wanted = eval_columns(spec)
    token = uuid.uuid4().hex[:8]
    import dask

    shared = dask.delayed(contract, name=f"contract-{token}", traverse=False)  # sent once
    tasks = [
        dask.delayed(score_part, pure=False)(
            part,
            str(b.root),
            shared,
            wanted,
            chunk_rows,
            None if repeats is None else repeats[i],
            dask_key_name=f"evaluate-part-{token}-{i}",
        )
        for i, part in enumerate(parts)
    ]
    total = sum(p.rows for p in parts)
    results: list[Scored] = engine._gather(
        engine.client.compute(tasks), [p.rows for p in parts], progress, "scoring", total
    )
    session = contract.session(allow_extra=True, repeats={})
    for result in results:
        session.merge(result.session)
    if not parts:
        session.add(type_columns(schema.empty_table(), contract.contract))
    session.finish().raise_for_violations(name)
    for result in results:
        if result.error is not None:
            raise result.error
    columns = _columns(results, schema, wanted)
    if total:
        _require(spec, schema.names, name)
    evalset = eval_set(spec, columns, name)
    raw = {
        key: np.concatenate([r.raw[key] for r in results if r.raw]) for key in results[0].raw or {}
    }
    outputs = model_outputs(
        raw, evalset, threshold=spec.model.threshold, classes=results[0].classes
    )
    report = evaluate_sets(
        spec.acceptance, evalset, outputs, None, data_name=name, resamples=resamples
    )
    if latency:
        head = pa.Table.from_batches(
            list(parts[0].batches(max(64, spec.api.max_batch_size))), schema=schema
        )
        add_latency(report, b, b.predictor(), type_columns(head, contract.contract))
    return report


def _bundle(root: str) -> Bundle:
    """The bundle at ``root``, opened (and integrity-checked) once per worker process."""
    stat = (Path(root) / MANIFEST_NAME).stat()
    key = (root, stat.st_mtime_ns, stat.st_size)
    if key not in _OPENED:
        _OPENED[key] = open_bundle(root)
    return _OPENED[key]


def _columns(results: list[Scored], schema: pa.Schema, wanted: list[str]) -> pa.Table:
    if results:
        return pa.concat_tables([r.columns for r in results])
    return schema.empty_table().select([c for c in wanted if c in schema.names])


def _require(spec: Any, names: list[str], name: str) -> None:
    """The local engine's errors for a missing label, query or slice column (naming all the
    data's columns, not only those gathered)."""
    a = spec.acceptance
    if spec.data_contract.label:
        require_column(names, spec.data_contract.label, name, "label")
    if spec.model.task == "ranking" and a.query:
        require_column(names, a.query, name, "query column")
    for col in dict.fromkeys(g.by for g in a.guardrails if g.by):
        require_column(names, col, name, "slice column")
