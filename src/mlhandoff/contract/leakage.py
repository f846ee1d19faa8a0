"""Leakage checks: signs that evaluation overstates how the model will do in production.

* one feature that alone predicts the label almost perfectly (binary label: ROC AUC of the raw
  feature, or of its categories' label rates; multiclass: Goodman–Kruskal lambda; regression:
  |Spearman rho| or the correlation ratio) — usually the label or its aftermath under a new name;
* ids, groups or whole rows shared between training and evaluation data;
* evaluation rows earlier than the training cut-off when the spec declares a time split.

Findings are warnings with evidence (feature, score), never failures: a person judges them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import rankdata

from mlhandoff.contract.report import REDACTED
from mlhandoff.contract.tables import read_table
from mlhandoff.contract.types import is_list
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract, DataFile, LeakageFinding, LeakageRecord

#: A feature scoring at least this alone is reported.
THRESHOLD = 0.99
#: Categories with fewer rows are pooled, so near-unique values cannot "predict" by memorising.
MIN_SUPPORT = 5
MAX_ROWS = 200_000
_MIN_ROWS = 20
_MAX_CLASSES = 50


def feature_leakage(
    table: pa.Table,
    label: str,
    contract: DataContract | None = None,
    *,
    threshold: float = THRESHOLD,
    parse_text: bool = False,
) -> list[LeakageFinding]:
    """Features of ``table`` that alone predict ``label`` with a score of at least ``threshold``."""
    if label not in table.column_names:
        raise InputError(f"label column '{label}' is not in the data")
    table = table.filter(pc.is_valid(table.column(label)))
    if table.num_rows > MAX_ROWS:
        picked = np.sort(np.random.default_rng(0).choice(table.num_rows, MAX_ROWS, replace=False))
        table = table.take(pa.array(picked))
    if table.num_rows < _MIN_ROWS:
        return []
    kind, y = _label(table.column(label), parse_text)
    if kind is None:
        return []
    fields = contract.fields if contract else {}
    findings = []
    for name in table.column_names:
        spec = fields.get(name)
        if name == label or (spec is not None and (spec.id or spec.type == "array")):
            continue
        if contract is not None and spec is None:
            continue
        numeric, codes = _feature(table.column(name), parse_text)
        if numeric is None and codes is None:
            continue
        score, metric = _score(kind, y, numeric, codes)
        if score is not None and score >= threshold:
            findings.append(
                LeakageFinding(
                    check="single_feature",
                    field=name,
                    score=round(float(score), 4),
                    detail=f"'{name}' alone predicts '{label}' with {metric} {score:.3f} "
                    f"(>= {threshold}) on {table.num_rows} rows; check that it is known at "
                    "prediction time and not derived from the label",
                )
            )
    return findings


def _label(column: pa.ChunkedArray, parse_text: bool) -> tuple[str | None, np.ndarray]:
    """binary (0/1), multiclass (class codes) or regression (floats); None when unusable."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if parse_text and pa.types.is_string(column.type):
        with contextlib.suppress(pa.ArrowInvalid):
            column = pc.cast(column, pa.float64())
    distinct = pc.count_distinct(column).as_py()
    if distinct < 2:
        return None, np.empty(0)
    numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    numeric = numeric or pa.types.is_boolean(column.type)
    if distinct == 2 or (distinct <= _MAX_CLASSES and not pa.types.is_floating(column.type)):
        codes = _codes(column)
        if distinct == 2:
            classes = pc.unique(column).to_pylist()
            positive = sorted(classes)[1] if numeric else classes[1]
            return "binary", pc.equal(column, positive).to_numpy().astype(bool)
        return "multiclass", codes
    if numeric:
        return "regression", column.to_numpy().astype(float)
    return None, np.empty(0)


def _feature(
    column: pa.ChunkedArray, parse_text: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(numbers with NaN for nulls, None) for ordered features, (None, codes) for categories."""
    t = column.type
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
        t = column.type
    if parse_text and pa.types.is_string(t):
        try:
            column = pc.cast(column, pa.float64())
            t = column.type
        except pa.ArrowInvalid:
            pass
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        column = column.cast(pa.int64()) if pa.types.is_timestamp(t) else column.cast(pa.int32())
        t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.where(np.isfinite(values), values, np.nan), None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return None, _codes(column)
    return None, None


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """Dense integer codes of a column's values; -1 for nulls."""
    indices = pc.dictionary_encode(column.combine_chunks()).indices
    return indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _score(
    kind: str, y: np.ndarray, numeric: np.ndarray | None, codes: np.ndarray | None
) -> tuple[float | None, str]:
    if codes is not None:
        codes = _pool_rare(codes)
    if kind == "binary":
        if numeric is not None:
            if np.all(np.isnan(numeric)):
                return None, ""
            filled = np.where(np.isnan(numeric), np.nanmin(numeric) - 1, numeric)
            return _auc_strength(filled, y), "ROC AUC"
        assert codes is not None
        rate = np.bincount(codes, weights=y) / np.maximum(np.bincount(codes), 1)
        return _auc_strength(rate[codes], y), "ROC AUC of its categories' label rates"
    if kind == "multiclass":
        groups = codes if codes is not None else _quantile_bins(numeric)  # type: ignore[arg-type]
        return _lambda(groups, y.astype(np.int64)), "Goodman-Kruskal lambda"
    if numeric is not None:
        keep = ~np.isnan(numeric)
        if keep.sum() < _MIN_ROWS:
            return None, ""
        rho = np.corrcoef(rankdata(numeric[keep]), rankdata(y[keep]))[0, 1]
        return (abs(float(rho)) if np.isfinite(rho) else None), "|Spearman rho|"
    assert codes is not None
    return _eta(codes, y), "correlation ratio"


def _pool_rare(codes: np.ndarray) -> np.ndarray:
    """Categories seen fewer than MIN_SUPPORT times (and nulls) share one code."""
    shifted = codes + 1
    counts = np.bincount(shifted)
    rare = counts[shifted] < MIN_SUPPORT
    return np.where(rare, 0, shifted)


def _auc_strength(score: np.ndarray, y: np.ndarray) -> float | None:
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    ranks = rankdata(score)
    auc = (ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return float(max(auc, 1 - auc))


def _quantile_bins(values: np.ndarray, bins: int = 20) -> np.ndarray:
    finite = values[~np.isnan(values)]
    if not len(finite):
        return np.zeros(len(values), dtype=np.int64)
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    binned = np.searchsorted(edges, values, side="right") + 1
    return np.where(np.isnan(values), 0, binned).astype(np.int64)


def _lambda(groups: np.ndarray, y: np.ndarray) -> float | None:
    classes = int(y.max()) + 1
    table = np.bincount(groups * classes + y, minlength=(int(groups.max()) + 1) * classes)
    table = table.reshape(-1, classes)
    base = table.sum(axis=0).max()
    if base == len(y):
        return None
    return float((table.max(axis=1).sum() - base) / (len(y) - base))


def _eta(codes: np.ndarray, y: np.ndarray) -> float | None:
    total = ((y - y.mean()) ** 2).sum()
    if not total:
        return None
    counts = np.bincount(codes)
    means = np.bincount(codes, weights=y) / np.maximum(counts, 1)
    between = (counts * (means - y.mean()) ** 2).sum()
    return float(np.sqrt(between / total))


# --- training vs evaluation data ------------------------------------------------------------


def split_leakage(
    train: pa.Table, evaluation: pa.Table, contract: DataContract, name: str = "evaluation"
) -> list[LeakageFinding]:
    """Ids, groups or rows the evaluation data shares with training data; time-split breaches."""
    findings: list[LeakageFinding] = []
    both = set(train.column_names) & set(evaluation.column_names)
    rows = evaluation.num_rows
    if not rows or not train.num_rows:
        return findings
    split = contract.split
    for field, spec in contract.fields.items():
        grouping = split is not None and split.kind == "group" and split.column == field
        if field not in both or not (spec.id or grouping):
            continue
        shared = pc.is_in(evaluation.column(field), value_set=pc.unique(train.column(field)))
        shared = pc.and_(shared, pc.is_valid(evaluation.column(field)))
        count = pc.sum(shared).as_py() or 0
        if count:
            first = evaluation.column(field).filter(shared)[0].as_py()
            example = REDACTED if spec.pii else repr(first)
            what = "group" if grouping else "id"
            findings.append(
                LeakageFinding(
                    check="shared_groups" if grouping else "shared_ids",
                    field=field,
                    score=round(count / rows, 4),
                    detail=f"{count} of {rows} {name} rows ({count / rows:.1%}) reuse a "
                    f"training {what} in '{field}' (e.g. {example})",
                )
            )
    features = [n for n, f in contract.fields.items() if n in both and not f.id]
    if features:
        shared_rows = _shared_rows(train.select(features), evaluation.select(features))
        if shared_rows:
            findings.append(
                LeakageFinding(
                    check="shared_rows",
                    score=round(shared_rows / rows, 4),
                    detail=f"{shared_rows} of {rows} {name} rows ({shared_rows / rows:.1%}) also "
                    f"appear in the training data (same values in all {len(features)} fields)",
                )
            )
    if split is not None and split.kind == "time" and split.column and split.column in both:
        findings += _time_split(train, evaluation, split.column, name)
    return findings


def _shared_rows(train: pa.Table, evaluation: pa.Table) -> int:
    return int(np.isin(_row_hashes(evaluation), _row_hashes(train)).sum())


def _row_hashes(table: pa.Table) -> np.ndarray:
    """One 64-bit hash per row over every column; an array column counts by its values."""
    columns: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns[name] = _list_hashes(column) if is_list(column.type) else column.to_pandas()
    return pd.util.hash_pandas_object(pd.DataFrame(columns), index=False).to_numpy()


def _list_hashes(column: pa.ChunkedArray) -> pd.Series:
    """A hash per list over its values (pandas cannot hash the numpy arrays a list column
    becomes): fixed-length lists as the rows of a matrix, anything else by its text."""
    lists = column.combine_chunks()
    sizes = pc.unique(pc.list_value_length(lists)).to_pylist()
    if not lists.null_count and len(sizes) == 1:
        values = pc.list_flatten(lists).cast(pa.float64()).to_numpy(zero_copy_only=False)
        matrix = pd.DataFrame(values.reshape(len(lists), sizes[0]))
        return pd.util.hash_pandas_object(matrix, index=False)
    return pd.Series([None if v is None else repr(v) for v in lists.to_pylist()], dtype=object)


def _time_split(
    train: pa.Table, evaluation: pa.Table, column: str, name: str
) -> list[LeakageFinding]:
    cutoff = pc.max(train.column(column))
    if not cutoff.is_valid:
        return []
    try:
        earlier = pc.sum(pc.less(evaluation.column(column), cutoff)).as_py() or 0
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return []
    if not earlier:
        return []
    rows = evaluation.num_rows
    return [
        LeakageFinding(
            check="time_split",
            field=column,
            score=round(earlier / rows, 4),
            detail=f"{earlier} of {rows} {name} rows ({earlier / rows:.1%}) are earlier than the "
            f"training cut-off {cutoff.as_py().isoformat()} in '{column}'; a time split needs "
            "every evaluation row at or after it",
        )
    ]


def check_training_data(contract: DataContract, files: list[DataFile], base: Path) -> LeakageRecord:
    """Run every leakage check the spec's training.data allows; what ran goes in ``checked``."""
    record = LeakageRecord()
    train = _read_role(files, ("train",), base, record, contract)
    if train is None:
        if files:
            record.checked.append("no readable training file (role: train): nothing compared")
        return record
    label = contract.label
    if label and label in train.column_names:
        record.findings += feature_leakage(train, label, contract)
        record.checked.append(
            f"single feature vs {label} on the training data ({train.num_rows} rows)"
        )
    for entry in files:
        if entry.role not in ("eval", "test"):
            continue
        evaluation = _read_role([entry], (entry.role,), base, record, contract)
        if evaluation is None:
            continue
        record.findings += split_leakage(
            train, evaluation, contract, f"{entry.role} ({entry.path})"
        )
        split = contract.split
        extra = f", time split on {split.column}" if split and split.kind == "time" else ""
        record.checked.append(f"shared ids and rows{extra}: train vs {entry.path}")
    return record


def _read_role(
    files: list[DataFile],
    roles: tuple[str, ...],
    base: Path,
    record: LeakageRecord,
    contract: DataContract,
) -> pa.Table | None:
    tables = []
    for entry in files:
        if entry.role not in roles:
            continue
        try:
            tables.append(read_table(base / entry.path, contract=contract, name=entry.path))
        except InputError as exc:
            record.checked.append(f"{entry.path}: not readable as a table, skipped ({exc})")
    if not tables:
        return None
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        record.checked.append(f"training files do not share one schema, skipped ({exc})")
        return None
