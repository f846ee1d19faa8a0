"""Threshold curves of a binary scorer under integer row weights, for exact fast bootstraps.

The scores are sorted once. A bootstrap resample is a vector of row counts (``bincount`` of its
indices); cumulative weighted sums in sorted order give true- and false-positive counts at every
distinct score, from which ROC AUC, average precision and the precision/recall trade-offs follow.
Ties are grouped exactly as scikit-learn groups them (one threshold per distinct score), and all
counting is in integers, so a resample's AUC equals ``roc_auc_score`` on the resampled rows up
to the last floating-point bit of the final division.
"""

from __future__ import annotations

import numpy as np


class RankedScores:
    """Scores sorted once (descending), with the end of every run of tied scores."""

    def __init__(self, score: np.ndarray, positive: np.ndarray) -> None:
        self.order = np.argsort(-score, kind="stable")
        ranked = score[self.order]
        ends = np.flatnonzero(ranked[1:] != ranked[:-1])
        n = len(score)
        # None when every score is distinct: the cumulative sums are already per threshold.
        self.ends: np.ndarray | None = None if len(ends) == n - 1 else np.append(ends, n - 1)
        self.positive = positive[self.order].astype(np.int64)

    def counts(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True and false positives at each threshold, for row weights (B, n) in input order."""
        ranked = np.take(weights, self.order, axis=1)
        return self.counts_sorted(ranked)

    def counts_sorted(self, ranked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`counts`, for weights already in this object's sorted order."""
        total = np.cumsum(ranked, axis=1)
        ranked *= self.positive
        tps = np.cumsum(ranked, axis=1)
        if self.ends is not None:
            total, tps = total[:, self.ends], tps[:, self.ends]
        total -= tps
        return tps, total

    def roc_auc(self, weights: np.ndarray) -> np.ndarray:
        """ROC AUC per row of weights (B, n): the hot path of the bootstrap, few temporaries.

        Each negative earns the positives ranked above it, plus half of those tied with it
        (the trapezoid over a run of ties); integer sums, one division at the end.
        """
        ranked = np.take(weights, self.order, axis=1)
        pos = ranked * self.positive
        ranked -= pos  # now the negatives' weights
        tps = np.cumsum(pos, axis=1)
        n_pos, n_neg = tps[:, -1], ranked.sum(axis=1)
        if self.ends is None:  # no ties: a negative's own row adds no positive
            twice = 2 * np.einsum("ij,ij->i", ranked, tps)
        else:
            fps = np.cumsum(ranked, axis=1)[:, self.ends]
            tps = tps[:, self.ends]
            twice = np.einsum("ij,ij->i", fps - _previous(fps), tps + _previous(tps))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((n_pos > 0) & (n_neg > 0), twice / (2.0 * n_pos * n_neg), np.nan)


def _previous(counts: np.ndarray) -> np.ndarray:
    prev = np.empty_like(counts)
    prev[:, 0] = 0
    prev[:, 1:] = counts[:, :-1]
    return prev


def _precision_recall(tps: np.ndarray, fps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = tps + fps
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tps / predicted, np.nan)
        recall = tps / tps[:, -1:]
    return precision, recall


def average_precision(tps: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Sum of precision times recall gained at each threshold (scikit-learn's definition)."""
    pos = tps[:, -1]
    precision, _ = _precision_recall(tps, fps)
    gained = tps - _previous(tps)
    total = np.nansum(gained * precision, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pos > 0, total / pos, np.nan)


def recall_at_precision(tps: np.ndarray, fps: np.ndarray, floor: float) -> np.ndarray:
    """Highest recall at a threshold whose precision is at least ``floor`` (0 when none is)."""
    precision, recall = _precision_recall(tps, fps)
    ok = precision >= floor  # NaN compares False
    best = np.max(np.where(ok, recall, 0.0), axis=1)
    return np.where(tps[:, -1] > 0, best, np.nan)


def precision_at_recall(tps: np.ndarray, fps: np.ndarray, floor: float) -> np.ndarray:
    """Highest precision at a threshold whose recall is at least ``floor``.

    Like scikit-learn's precision-recall curve, the curve starts at (recall 0, precision 1).
    """
    precision, recall = _precision_recall(tps, fps)
    ok = (recall >= floor) & ~np.isnan(precision)
    best = np.max(np.where(ok, precision, -np.inf), axis=1)
    if floor <= 0:
        best = np.maximum(best, 1.0)
    return np.where(tps[:, -1] > 0, best, np.nan)
