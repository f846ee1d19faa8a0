"""Realised performance against scikit-learn; the confidence-based estimate against the realised
performance of synthetic calibrated scores, within tolerances derived from the sampling noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from mlhandoff.monitor.performance import (
    SCORE_BINS,
    ScoreCounts,
    count_scores,
    estimated,
    realised,
)

THRESHOLD = 0.5


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores from Beta(1, 4) (mean 0.2, 6% above 0.5) and labels drawn with those chances."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(1.0, 4.0, n)
    return scores, (rng.random(n) < scores).astype(np.int64)


def _tie_bound(c: ScoreCounts) -> float:
    """The binned AUC treats pairs in one bin as ties: at most half of those pairs' share."""
    return float(np.sum(c.positives * c.negatives)) / (c.positives.sum() * c.negatives.sum()) / 2


def test_realised_metrics_match_scikit_learn() -> None:
    scores, labels = _calibrated(20_000, 1)
    (c,) = count_scores(scores, labels, THRESHOLD)
    got = realised(c)
    predicted = (scores >= THRESHOLD).astype(int)
    assert got["precision"] == pytest.approx(precision_score(labels, predicted), abs=1e-12)
    assert got["recall"] == pytest.approx(recall_score(labels, predicted), abs=1e-12)
    assert got["roc_auc"] is not None
    assert abs(got["roc_auc"] - roc_auc_score(labels, scores)) <= _tie_bound(c)
    assert _tie_bound(c) < 2e-3


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_the_estimate_from_calibrated_scores_meets_the_realised_values(seed: int) -> None:
    """Given the scores, the realised metrics are random (each label a coin with chance s); the
    estimate is their expectation. So the estimate may miss by the realised metric's sampling
    noise: we allow 4 standard errors, each from its own formula:

    * precision = TP / #(s ≥ t), #(s ≥ t) fixed: Var = Σ_{s≥t} s(1 − s) / #(s ≥ t)², exactly;
    * recall = TP / (TP + FN): the delta method on two independent sums of coins;
    * ROC AUC: Hanley & McNeil's (1982) standard error.
    """
    scores, labels = _calibrated(50_000, seed)
    (c,) = count_scores(scores, labels, THRESHOLD)
    est, real = estimated(c), realised(c)
    hit = scores >= THRESHOLD
    se_precision = np.sqrt(np.sum(scores[hit] * (1 - scores[hit]))) / hit.sum()
    tp, fn = scores[hit].sum(), scores[~hit].sum()
    var_tp, var_fn = (
        np.sum(scores[hit] * (1 - scores[hit])),
        np.sum(scores[~hit] * (1 - scores[~hit])),
    )
    se_recall = np.sqrt(fn**2 * var_tp + tp**2 * var_fn) / (tp + fn) ** 2
    auc = real["roc_auc"]
    assert auc is not None and est["roc_auc"] is not None
    positives, negatives = labels.sum(), (1 - labels).sum()
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se_auc = np.sqrt(
        (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2))
        / (positives * negatives)
    )
    assert abs(est["precision"] - real["precision"]) <= 4 * se_precision
    assert abs(est["recall"] - real["recall"]) <= 4 * se_recall
    assert abs(est["roc_auc"] - auc) <= 4 * se_auc + _tie_bound(c)
    # The tolerances are tight enough to mean something: a few points of each metric at most.
    assert 4 * se_precision < 0.04 and 4 * se_recall < 0.02 and 4 * se_auc < 0.015


def test_the_estimate_is_wrong_when_scores_are_not_calibrated() -> None:
    scores, labels = _calibrated(50_000, 5)
    (c,) = count_scores(np.sqrt(scores), labels, THRESHOLD)  # overconfident scores
    est, real = estimated(c), realised(c)
    assert est["precision"] is not None and real["precision"] is not None
    assert est["precision"] - real["precision"] > 0.1
    assert est["recall"] is not None and real["recall"] is not None
    assert abs(est["recall"] - real["recall"]) > 0.1


def test_counts_of_parts_merge_into_the_counts_of_the_whole() -> None:
    scores, labels = _calibrated(3000, 6)
    unknown = labels.astype(float)
    unknown[::3] = np.nan  # labels that have not arrived yet
    groups = np.random.default_rng(7).integers(0, 3, 3000)
    per_group = count_scores(scores, unknown, THRESHOLD, groups=groups, n_groups=3)
    merged = per_group[0].merge(per_group[1]).merge(per_group[2])
    (whole,) = count_scores(scores, unknown, THRESHOLD)
    assert merged.rows.tolist() == whole.rows.tolist()
    assert merged.positives.tolist() == whole.positives.tolist()
    assert (merged.tp, merged.fp, merged.fn, merged.tn) == (whole.tp, whole.fp, whole.fn, whole.tn)
    assert merged.labelled == 2000 and merged.n == 3000
    assert merged.above_score == pytest.approx(whole.above_score)
    np.testing.assert_allclose(merged.score_sums, whole.score_sums)


def test_no_rows_or_no_labels_give_no_numbers() -> None:
    empty = ScoreCounts.empty(THRESHOLD)
    assert estimated(empty) == {"roc_auc": None, "precision": None, "recall": None}
    (unlabelled,) = count_scores(np.array([0.1, 0.7]), None, THRESHOLD)
    assert realised(unlabelled) == {"roc_auc": None, "precision": None, "recall": None}
    assert estimated(unlabelled)["precision"] == pytest.approx(0.7)
    (edge,) = count_scores(np.array([0.0, 1.0, np.nan]), np.array([0, 1, 1]), THRESHOLD)
    assert edge.n == 2 and edge.rows[0] == 1 and edge.rows[SCORE_BINS - 1] == 1
    assert realised(edge)["roc_auc"] == 1.0
