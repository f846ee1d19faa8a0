"""Evaluation data as arrays: the label, each model's outputs, slice columns and query groups.

Everything that can make metrics meaningless is refused here with a message that says what to
fix: a missing or mistyped label, NaN predictions, ranking rows without query groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.errors import EvaluationError

NULL_SLICE = "(null)"


@dataclass(frozen=True)
class Outputs:
    """One model's predictions in the form metrics use (fields unused by the task are None)."""

    score: np.ndarray | None = None  # binary: P(positive); ranking: relevance score
    pred: np.ndarray | None = None  # binary: 0/1 at the threshold; multiclass: class codes
    prediction: np.ndarray | None = None  # regression
    # multiclass probabilities in class-code order, then classes the labels never use
    proba: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Outputs:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        return Outputs(pick(self.score), pick(self.pred), pick(self.prediction), pick(self.proba))


@dataclass(frozen=True)
class Slices:
    """A column's values as integer codes, with the name of each code."""

    codes: np.ndarray
    names: list[str]


@dataclass
class EvalSet:
    """Labels and per-row facts shared by every model evaluated on the same rows."""

    task: str
    y: np.ndarray  # binary: 0/1 int64; multiclass: class codes; regression/ranking: float64
    classes: list[str] = field(default_factory=list)  # multiclass: names of the codes
    query: np.ndarray | None = None  # ranking: query code per row
    slices: dict[str, Slices] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray) -> EvalSet:
        return EvalSet(
            self.task,
            self.y[rows],
            self.classes,
            None if self.query is None else np.unique(self.query[rows], return_inverse=True)[1],
            {k: Slices(s.codes[rows], s.names) for k, s in self.slices.items()},
        )


def build_eval_set(
    table: pa.Table,
    *,
    task: str,
    label: str | None,
    query: str | None = None,
    slice_columns: Sequence[str] = (),
    classes: Sequence[str] = (),
    name: str = "data",
) -> EvalSet:
    """Check and convert the label, query and slice columns of ``table``."""
    if table.num_rows == 0:
        raise EvaluationError(f"{name} has 0 rows; there is nothing to evaluate")
    if not label:
        raise EvaluationError(
            "data_contract.label is not set in the spec; evaluation needs the label column"
        )
    column = _column(table, label, name, "label")
    nulls = column.null_count
    if nulls:
        raise EvaluationError(
            f"{name}: the label '{label}' has {nulls} null value(s); evaluate only labelled rows"
        )
    y, class_names = _label(column, task, label, name, classes)
    ranking_query = None
    if task == "ranking":
        if not query:
            raise EvaluationError(
                "ranking metrics need query groups: set acceptance.query to the column that "
                "identifies each query"
            )
        ranking_query = _codes(_column(table, query, name, "query column"))[0]
    slices = {}
    for col in dict.fromkeys(slice_columns):
        codes, names = _codes(_column(table, col, name, "slice column"))
        slices[col] = Slices(codes, names)
    return EvalSet(task, y, class_names, ranking_query, slices)


def _column(table: pa.Table, col: str, name: str, role: str) -> pa.ChunkedArray:
    require_column(table.column_names, col, name, role)
    return table.column(col)


def require_column(columns: Sequence[str], col: str, name: str, role: str) -> None:
    """EvaluationError naming the data's columns when ``col`` (the ``role`` column) is not one."""
    if col not in columns:
        shown = ", ".join(columns[:12])
        more = f" (+{len(columns) - 12} more)" if len(columns) > 12 else ""
        raise EvaluationError(
            f"{name}: the {role} '{col}' is missing; the data has columns: {shown}{more}"
        )


def _label(
    column: pa.ChunkedArray, task: str, label: str, name: str, classes: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    kind = column.type
    if task == "multiclass_classification":
        names = sorted(set(classes) | {str(v) for v in pc.unique(column).to_pylist()})
        lookup = {c: i for i, c in enumerate(names)}
        return np.array([lookup[str(v)] for v in column.to_pylist()], dtype=np.int64), names
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if task == "binary_classification":
        if pa.types.is_boolean(kind) or numeric:
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            bad = ~np.isin(values, (0.0, 1.0))
            if not bad.any():
                return values.astype(np.int64), []
            raise EvaluationError(
                f"{name}: the label '{label}' must be 0/1 or boolean for binary classification; "
                f"{int(bad.sum())} row(s) hold other values, e.g. {values[bad][0]!r}"
            )
        raise _wrong_type(column, label, name, "0/1 or boolean", task)
    if not numeric:
        raise _wrong_type(column, label, name, "numeric", task)
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.isfinite(values).all():
        raise EvaluationError(f"{name}: the label '{label}' has NaN or infinite values")
    if task == "ranking" and (values < 0).any():
        raise EvaluationError(f"{name}: ranking relevance '{label}' must not be negative")
    return values, []


def _wrong_type(
    column: pa.ChunkedArray, label: str, name: str, expected: str, task: str
) -> EvaluationError:
    example = column.drop_null()[0].as_py() if len(column.drop_null()) else None
    return EvaluationError(
        f"{name}: the label '{label}' is {column.type} (e.g. {example!r}); {task} needs "
        f"{expected} labels; convert the column or fix data_contract.label"
    )


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    names = [NULL_SLICE if v is None else str(v) for v in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(names, kind="stable")  # codes in name order: stable reports
    remap = np.empty(len(names), dtype=np.int64)
    remap[order] = np.arange(len(names))
    return remap[codes], [names[i] for i in order]


def model_outputs(
    raw: Mapping[str, np.ndarray],
    data: EvalSet,
    *,
    threshold: float,
    who: str = "the model",
    classes: Sequence[object] | np.ndarray | None = None,
) -> Outputs:
    """A predictor's standard outputs as metric inputs; NaN or infinite predictions refused.

    ``classes`` are the labels of the ``proba`` columns (the predictor's ``classes``; None:
    0..k-1)."""
    task = data.task
    if task == "multiclass_classification":
        labels = np.asarray(_need(raw, "label", who, task))
        lookup = {c: i for i, c in enumerate(data.classes)}
        unknown = sorted({str(v) for v in labels} - set(lookup))
        if unknown:
            raise EvaluationError(
                f"{who} predicts classes the labels never use and the spec does not list: "
                f"{', '.join(unknown[:5])}"
            )
        pred = np.array([lookup[str(v)] for v in labels], dtype=np.int64)
        proba = raw.get("proba")
        if proba is None:
            return Outputs(pred=pred)
        return Outputs(pred=pred, proba=_by_code(_finite(proba, who, "proba"), classes, data, who))
    if task == "regression":
        return Outputs(prediction=_finite(_need(raw, "prediction", who, task), who, "prediction"))
    score = _finite(_need(raw, "score", who, task), who, "score")
    if task == "ranking":
        return Outputs(score=score)
    return Outputs(score=score, pred=(score >= threshold).astype(np.int64))


def _by_code(
    proba: np.ndarray, classes: Sequence[object] | np.ndarray | None, data: EvalSet, who: str
) -> np.ndarray:
    """Probability columns reordered to the class codes (a class the model does not know has
    probability 0); the model's classes the labels never use follow, so they still take their
    place in a top-k but can never be a hit."""
    known = [str(c) for c in (range(proba.shape[1]) if classes is None else classes)]
    if proba.ndim != 2 or proba.shape[1] != len(known):
        raise EvaluationError(
            f"{who} gave 'proba' of shape {proba.shape}, but it knows {len(known)} classes"
        )
    column = {name: i for i, name in enumerate(known)}
    order = list(data.classes) + [c for c in known if c not in set(data.classes)]
    result = np.zeros((len(proba), len(order)))
    for code, name in enumerate(order):
        if name in column:
            result[:, code] = proba[:, column[name]]
    return result


def _need(raw: Mapping[str, np.ndarray], key: str, who: str, task: str) -> np.ndarray:
    if key not in raw:
        raise EvaluationError(
            f"{who} gave no '{key}' output, which {task} metrics need; it gave {', '.join(raw)}"
        )
    return np.asarray(raw[key])


def _finite(values: np.ndarray, who: str, what: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"{who}: '{what}' is not numeric ({exc})") from exc
    bad = ~np.isfinite(out)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(out), -1).any(axis=1))
        raise EvaluationError(
            f"{who} returned NaN or infinite '{what}' for {len(rows)} of {len(out)} rows "
            f"(first at row {int(rows[0])}); metrics on such predictions are undefined: fix the "
            "model or drop those rows from the evaluation data"
        )
    return out
