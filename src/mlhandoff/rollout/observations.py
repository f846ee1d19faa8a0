"""One value per observation of a rollout metric, from the prediction log: what the judge
compares between the arms and what the triggers aggregate over windows.

Rates become 0/1 values over their population (recall: the rows labelled positive), means
their values, latency one value per request. A metric the log cannot give (no status column,
labels not joined) is a reason, not an error: the judge reports it as no data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.rollout.logs import LABEL_PREFIX, LATENCY, LOGGED_AT, REQUEST_ID, STATUS, VERSION
from mlhandoff.spec.models import HandoffSpec
from mlhandoff.spec.rollout_rules import RolloutMetric, parse_rollout_metric


@dataclass(frozen=True)
class Observations:
    values: np.ndarray  # float64
    seconds: np.ndarray  # float64, since the epoch
    candidate: np.ndarray  # bool: the candidate answered

    def arm(self, candidate: bool) -> np.ndarray:
        return self.values[self.candidate == candidate]


def columns_needed(spec: HandoffSpec, metrics: list[str]) -> set[str]:
    """The log columns these metrics read (those a log lacks give no data, not an error)."""
    out = {REQUEST_ID}
    label = LABEL_PREFIX + (spec.data_contract.label or "")
    for name in metrics:
        metric = parse_rollout_metric(name)
        if metric.name == "error_rate":
            out.add(STATUS)
        elif metric.kind == "quantile":
            out.add(LATENCY)
        elif metric.column is not None:
            out.add(metric.column)
        else:
            out |= {_output(spec, "score"), _output(spec, "label"), _output(spec, "prediction")}
        if metric.needs_labels:
            out.add(label)
    return out


def _output(spec: HandoffSpec, source: str) -> str:
    for name, out in spec.outputs().fields.items():
        if (out.source or name) == source:
            return f"output.{name}"
    return f"output.{source}"


def observe(
    metric: RolloutMetric, table: pa.Table, spec: HandoffSpec, candidate_version: str
) -> Observations | str:
    """The metric's observations in ``table`` (rows of the two arms only), or why there are none."""
    names = set(table.column_names)
    is_candidate = pc.equal(table.column(VERSION), candidate_version).to_numpy(zero_copy_only=False)
    seconds = table.column(LOGGED_AT).cast(pa.int64()).to_numpy().astype(np.float64) / 1e6
    label_column = LABEL_PREFIX + (spec.data_contract.label or "")

    def numbers(column: str) -> np.ndarray:
        return table.column(column).cast(pa.float64()).to_numpy(zero_copy_only=False)

    def result(values: np.ndarray, keep: np.ndarray) -> Observations:
        keep = keep & ~np.isnan(values)
        return Observations(values[keep], seconds[keep], is_candidate[keep])

    if metric.needs_labels and label_column not in names:
        return "needs delayed labels: pass --labels and --join-key"
    if metric.name == "error_rate" or metric.kind == "quantile":
        column = STATUS if metric.name == "error_rate" else LATENCY
        if column not in names:
            return f"the log has no '{column}' column (the server writes it per request)"
        values = numbers(column)
        if metric.name == "error_rate":
            values = np.where(np.isnan(values), np.nan, (values >= 500).astype(np.float64))
        return result(values, _first_of_request(table))
    if metric.column is not None:
        if metric.column not in names:
            return f"the log has no '{metric.column}' column"
        return result(numbers(metric.column), np.ones(table.num_rows, dtype=bool))
    if metric.name == "mae":
        prediction = _output(spec, "prediction")
        if prediction not in names:
            return f"the log has no '{prediction}' column"
        return result(np.abs(numbers(prediction) - numbers(label_column)), _all(table))
    if spec.model.task == "multiclass_classification":  # accuracy
        predicted = _output(spec, "label")
        if predicted not in names:
            return f"the log has no '{predicted}' column"
        truth = table.column(label_column)
        right = pc.equal(table.column(predicted).cast(truth.type), truth)
        values = right.to_numpy(zero_copy_only=False).astype(np.float64)
        valid = pc.is_valid(right).to_numpy(zero_copy_only=False)
        return result(np.where(valid, values, np.nan), _all(table))
    score = _output(spec, "score")
    if score not in names:
        return f"the log has no '{score}' column"
    scores = numbers(score)
    flagged = np.where(
        np.isnan(scores), np.nan, (scores >= spec.model.threshold).astype(np.float64)
    )
    if metric.name == "positive_rate":
        return result(flagged, _all(table))
    positive = numbers(label_column)
    positive = np.where(np.isnan(positive), np.nan, (positive == 1).astype(np.float64))
    if metric.name == "recall":
        return result(flagged, positive == 1)
    if metric.name == "precision":
        return result(positive, flagged == 1)
    return result(
        np.where(np.isnan(positive), np.nan, (flagged == positive).astype(np.float64)), _all(table)
    )


def _all(table: pa.Table) -> np.ndarray:
    return np.ones(table.num_rows, dtype=bool)


def _first_of_request(table: pa.Table) -> np.ndarray:
    """The first row of each request (a request's rows are logged together, in one piece)."""
    if REQUEST_ID not in table.column_names or table.num_rows == 0:
        return _all(table)
    ids = table.column(REQUEST_ID).combine_chunks()
    same = pc.fill_null(pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)), False)
    return np.concatenate([[True], ~same.to_numpy(zero_copy_only=False).astype(bool)])
