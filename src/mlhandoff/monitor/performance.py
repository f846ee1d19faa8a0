"""A binary classifier's performance per window: realised once labels are joined, and estimated
from the scores alone before they arrive (confidence-based performance estimation, the idea of
NannyML's CBPE).

If the scores are calibrated, a row with score s is a positive with probability s, so the
expected confusion matrix at the threshold t is E[TP] = Σ_{s≥t} s, E[FP] = Σ_{s≥t} (1 − s),
E[FN] = Σ_{s<t} s: precision ≈ E[TP] / #(s ≥ t) and recall ≈ E[TP] / Σ s, from sums kept
exactly. ROC AUC is estimated the same way over every threshold: each score bin holds Σ s
expected positives and Σ (1 − s) expected negatives, and the AUC of those two histograms is the
estimate. The estimate is only as good as the calibration (``acceptance``'s ``ece`` checks it at
pack): it cannot see a change in how features relate to the label, only in the scores.

Everything here is counts and sums per window (:class:`ScoreCounts`), so windows merge exactly
like profiles. AUC from ``SCORE_BINS`` bins treats scores in one bin as ties: it differs from
the exact AUC by at most half the share of positive–negative pairs that share a bin.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: Uniform score bins on [0, 1] for the AUCs.
SCORE_BINS = 1000


@dataclass(frozen=True)
class ScoreCounts:
    threshold: float
    #: Rows per score bin, and the sum of their scores.
    rows: np.ndarray
    score_sums: np.ndarray
    #: Labelled rows per score bin, by label.
    positives: np.ndarray
    negatives: np.ndarray
    #: Exact sums at the threshold: rows at or above it and their scores; all scores.
    above: int = 0
    above_score: float = 0.0
    total_score: float = 0.0
    #: Exact confusion counts of the labelled rows at the threshold.
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def empty(cls, threshold: float) -> ScoreCounts:
        z = np.zeros(SCORE_BINS, np.int64)
        return cls(threshold, z, np.zeros(SCORE_BINS), z.copy(), z.copy())

    @property
    def n(self) -> int:
        return int(self.rows.sum())

    @property
    def labelled(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def merge(self, other: ScoreCounts) -> ScoreCounts:
        return replace(
            self,
            rows=self.rows + other.rows,
            score_sums=self.score_sums + other.score_sums,
            positives=self.positives + other.positives,
            negatives=self.negatives + other.negatives,
            above=self.above + other.above,
            above_score=self.above_score + other.above_score,
            total_score=self.total_score + other.total_score,
            tp=self.tp + other.tp,
            fp=self.fp + other.fp,
            fn=self.fn + other.fn,
            tn=self.tn + other.tn,
        )


def count_scores(
    scores: np.ndarray,
    labels: np.ndarray | None,
    threshold: float,
    *,
    groups: np.ndarray | None = None,
    n_groups: int = 1,
) -> list[ScoreCounts]:
    """Per group, the counts of ``scores`` (NaN: skipped) and of ``labels`` (1/0, NaN: not yet
    known) at ``threshold``."""
    scores = np.asarray(scores, dtype=np.float64)
    if groups is None:
        groups = np.zeros(scores.size, np.intp)
    keep = np.isfinite(scores)
    s, g = scores[keep], groups[keep]
    y = None if labels is None else np.asarray(labels, dtype=np.float64)[keep]
    b = np.clip((s * SCORE_BINS).astype(np.intp), 0, SCORE_BINS - 1)
    flat = g * SCORE_BINS + b
    size = n_groups * SCORE_BINS

    def per_bin(weights: np.ndarray | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        idx = flat if mask is None else flat[mask]
        w = None if weights is None else (weights if mask is None else weights[mask])
        return np.bincount(idx, weights=w, minlength=size).reshape(n_groups, SCORE_BINS)

    def per_group(weights: np.ndarray | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        idx = g if mask is None else g[mask]
        w = None if weights is None else (weights if mask is None else weights[mask])
        return np.bincount(idx, weights=w, minlength=n_groups)[:n_groups]

    hit = s >= threshold
    rows, sums = per_bin(), per_bin(s)
    above, above_score, total = per_group(mask=hit), per_group(s, hit), per_group(s)
    zeros_bins = np.zeros((n_groups, SCORE_BINS), np.int64)
    zeros = np.zeros(n_groups, np.int64)
    if y is None:
        pos = neg = zeros_bins
        tp = fp = fn = tn = zeros
    else:
        is_pos, is_neg = y == 1, y == 0
        pos, neg = per_bin(mask=is_pos), per_bin(mask=is_neg)
        tp, fp = per_group(mask=is_pos & hit), per_group(mask=is_neg & hit)
        fn, tn = per_group(mask=is_pos & ~hit), per_group(mask=is_neg & ~hit)
    return [
        ScoreCounts(
            threshold,
            rows[i].astype(np.int64),
            sums[i],
            pos[i].astype(np.int64),
            neg[i].astype(np.int64),
            above=int(above[i]),
            above_score=float(above_score[i]),
            total_score=float(total[i]),
            tp=int(tp[i]),
            fp=int(fp[i]),
            fn=int(fn[i]),
            tn=int(tn[i]),
        )
        for i in range(n_groups)
    ]


def binned_auc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
    """P(score of a positive > score of a negative), ties (same bin) counted half."""
    p, n = float(positives.sum()), float(negatives.sum())
    if p == 0 or n == 0:
        return None
    below = np.cumsum(negatives) - negatives  # negatives in lower bins
    return float(np.sum(positives * (below + 0.5 * negatives)) / (p * n))


def estimated(c: ScoreCounts) -> dict[str, float | None]:
    """ROC AUC, precision and recall at the threshold, expected from calibrated scores."""
    expected_pos = c.score_sums
    expected_neg = c.rows - c.score_sums
    return {
        "roc_auc": binned_auc(expected_pos, expected_neg),
        "precision": c.above_score / c.above if c.above else None,
        "recall": c.above_score / c.total_score if c.total_score > 0 else None,
    }


def realised(c: ScoreCounts) -> dict[str, float | None]:
    """The same metrics on the rows whose labels have arrived."""
    return {
        "roc_auc": binned_auc(c.positives, c.negatives),
        "precision": c.tp / (c.tp + c.fp) if c.tp + c.fp else None,
        "recall": c.tp / (c.tp + c.fn) if c.tp + c.fn else None,
    }
