"""Metrics as functions of row weights, so one code path gives point estimates and bootstraps.

A *statistic* maps a block of weights ``W`` (B resamples x n rows, integer counts: ones for the
point estimate, ``bincount`` of resample indices for the bootstrap) to B metric values. Weighted
with counts, every metric equals scikit-learn's on the resampled rows (the tests check this).
Undefined values (AUC of a single-class resample, recall without positives) are NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np

from mlhandoff.evaluate import curves, ranking
from mlhandoff.evaluate.data import EvalSet, Outputs
from mlhandoff.spec.metric_names import MetricRef

ECE_BINS = 10


class Weights:
    """A block of resample weights (B, n): integer counts, with a float copy made on demand."""

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = counts

    @cached_property
    def floats(self) -> np.ndarray:
        return self.counts.astype(np.float64)

    @cached_property
    def total(self) -> np.ndarray:
        return self.counts.sum(axis=1).astype(np.float64)

    def columns(self, rows: np.ndarray) -> Weights:
        return Weights(self.counts[:, rows])


Statistic = Callable[[Weights], np.ndarray]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _mean(w: Weights, values: np.ndarray) -> np.ndarray:
    return _ratio(w.floats @ values, w.total)


def statistic(ref: MetricRef, data: EvalSet, out: Outputs) -> Statistic:
    """The statistic computing ``ref`` for one model on ``data``."""
    builder = _BUILDERS.get(data.task)
    if builder is None:  # pragma: no cover - tasks are a closed set
        raise ValueError(data.task)
    return builder(ref, data, out)


def _binary(ref: MetricRef, data: EvalSet, out: Outputs) -> Statistic:
    y = data.y
    assert out.score is not None and out.pred is not None
    score, pred = out.score, out.pred
    base = ref.base
    if base == "roc_auc":
        cache = RankedCache(score, y)
        return lambda w: cache.get().roc_auc(w.counts)
    curve_metrics: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "pr_auc": curves.average_precision,
    }
    if base in ("pr_auc", "recall@precision", "precision@recall"):
        ranked = RankedCache(score, y)
        param = float(ref.param or 0.0)
        fn = curve_metrics.get(base) or (
            (lambda t, f: curves.recall_at_precision(t, f, param))
            if base == "recall@precision"
            else (lambda t, f: curves.precision_at_recall(t, f, param))
        )
        return lambda w: fn(*ranked.get().counts(w.counts))
    if base == "log_loss":
        eps = np.finfo(np.float64).eps
        p = np.clip(score, eps, 1 - eps)
        loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        return lambda w: _mean(w, loss)
    if base == "brier":
        sq = (y - score) ** 2
        return lambda w: _mean(w, sq)
    if base == "ece":
        bins = np.linspace(0.0, 1.0, ECE_BINS + 1)
        binned = np.searchsorted(bins[1:-1], score)  # as sklearn.calibration.calibration_curve
        onehot = np.zeros((len(y), ECE_BINS))
        onehot[np.arange(len(y)), binned] = 1.0
        gap = onehot * (y - score)[:, None]
        return lambda w: _ratio(np.abs(w.floats @ gap).sum(axis=1), w.total)
    cells = np.stack([y * pred, (1 - y) * pred, y * (1 - pred)], axis=1).astype(np.float64)
    return lambda w: _from_confusion(base, w, *(w.floats @ cells).T)


def _from_confusion(
    base: str, w: Weights, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> np.ndarray:
    tn = w.total - tp - fp - fn
    if base == "accuracy":
        return _ratio(tp + tn, w.total)
    if base == "precision":
        return _ratio(tp, tp + fp)
    if base == "recall":
        return _ratio(tp, tp + fn)
    if base == "f1":
        return _ratio(2 * tp, 2 * tp + fp + fn)
    if base == "selection_rate":
        return _ratio(tp + fp, w.total)
    return _ratio(fp, fp + tn)  # false_positive_rate


class RankedCache:
    """Sorts the scores on first use only (a statistic may never be evaluated)."""

    def __init__(self, score: np.ndarray, y: np.ndarray) -> None:
        self._score, self._y = score, y
        self._ranked: curves.RankedScores | None = None

    def get(self) -> curves.RankedScores:
        if self._ranked is None:
            self._ranked = curves.RankedScores(self._score, self._y)
        return self._ranked


def _multiclass(ref: MetricRef, data: EvalSet, out: Outputs) -> Statistic:
    y = data.y
    assert out.pred is not None
    pred = out.pred
    if ref.base == "accuracy":
        hit = (y == pred).astype(np.float64)
        return lambda w: _mean(w, hit)
    if ref.base == "top_k_accuracy@":
        if out.proba is None:
            raise _needs_proba(ref)
        k = int(ref.param or 1)
        # scikit-learn's top_k_accuracy_score: classes by descending probability, stable.
        top = np.argsort(out.proba, axis=1, kind="mergesort")[:, ::-1][:, :k]
        hit = (top == y[:, None]).any(axis=1).astype(np.float64)
        return lambda w: _mean(w, hit)
    k = len(data.classes)
    true_1h = np.zeros((len(y), k))
    true_1h[np.arange(len(y)), y] = 1.0
    pred_1h = np.zeros((len(y), k))
    pred_1h[np.arange(len(y)), pred] = 1.0
    both = true_1h * pred_1h
    micro = ref.base == "f1_micro"

    def f1(w: Weights) -> np.ndarray:
        tp, t, p = w.floats @ both, w.floats @ true_1h, w.floats @ pred_1h
        if micro:
            return _ratio(2 * tp.sum(axis=1), t.sum(axis=1) + p.sum(axis=1))
        present = (t + p) > 0  # scikit-learn averages over classes seen in either
        per_class = np.where(present, 2 * tp / np.where(present, t + p, 1.0), 0.0)
        return _ratio(per_class.sum(axis=1), present.sum(axis=1).astype(np.float64))

    return f1


def _needs_proba(ref: MetricRef) -> Exception:
    from mlhandoff.errors import EvaluationError

    return EvaluationError(
        f"{ref.name} needs class probabilities, but this model's predictor returns only the "
        "predicted label and its confidence; use accuracy or f1_macro instead"
    )


def _regression(ref: MetricRef, data: EvalSet, out: Outputs) -> Statistic:
    y = data.y
    assert out.prediction is not None
    err = y - out.prediction
    if ref.base == "rmse":
        sq = err**2
        return lambda w: np.sqrt(_mean(w, sq))
    if ref.base == "mae":
        absolute = np.abs(err)
        return lambda w: _mean(w, absolute)
    if ref.base == "mape":
        scaled = np.abs(err) / np.maximum(np.abs(y), np.finfo(np.float64).eps)
        return lambda w: _mean(w, scaled)
    sq = err**2

    def r2(w: Weights) -> np.ndarray:
        mean = _mean(w, y)
        ss_res = w.floats @ sq
        ss_tot = (w.floats * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
        # scikit-learn's force_finite: a constant target scores 1 if predicted exactly, else 0
        constant = ss_tot == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            value = 1 - ss_res / np.where(constant, 1.0, ss_tot)
        return np.where(constant, np.where(ss_res == 0, 1.0, 0.0), value)

    return r2


def _ranking(ref: MetricRef, data: EvalSet, out: Outputs) -> Statistic:
    assert data.query is not None and out.score is not None
    per_query = ranking.per_query(ref, data.query, data.y, out.score)
    return lambda w: _mean(w, per_query)


_BUILDERS: dict[str, Callable[[MetricRef, EvalSet, Outputs], Statistic]] = {
    "binary_classification": _binary,
    "multiclass_classification": _multiclass,
    "regression": _regression,
    "ranking": _ranking,
}
