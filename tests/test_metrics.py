"""Metrics against scikit-learn and fairlearn: point estimates, and bootstrap weights as resamples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mlhandoff.evaluate import bootstrap
from mlhandoff.evaluate.data import EvalSet, Outputs, Slices
from mlhandoff.evaluate.metrics import Weights, statistic
from mlhandoff.spec.metric_names import UnknownMetric, parse_metric

BINARY = "binary_classification"


def _value(name: str, data: EvalSet, out: Outputs, weights: np.ndarray | None = None) -> float:
    w = np.ones((1, data.rows), dtype=np.int64) if weights is None else weights[None, :]
    return float(statistic(parse_metric(name, data.task), data, out)(Weights(w))[0])


def _binary(y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> tuple[EvalSet, Outputs]:
    y = np.asarray(y, dtype=np.int64)
    return EvalSet(BINARY, y), Outputs(score=score, pred=(score >= threshold).astype(np.int64))


def _ece_reference(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins)
    edges = np.linspace(0, 1, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(y) * np.abs(prob_true - prob_pred)))


def _recall_at_precision(y: np.ndarray, s: np.ndarray, p: float) -> float:
    precision, recall, _ = skm.precision_recall_curve(y, s)
    return float(recall[precision >= p].max()) if (precision >= p).any() else 0.0


def _precision_at_recall(y: np.ndarray, s: np.ndarray, r: float) -> float:
    precision, recall, _ = skm.precision_recall_curve(y, s)
    return float(precision[recall >= r].max())


def _sklearn_binary(name: str, y: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> float:
    pred = (s >= 0.5).astype(int)
    nan = {"zero_division": np.nan}
    table = {
        "roc_auc": lambda: skm.roc_auc_score(y, s, sample_weight=w),
        "pr_auc": lambda: skm.average_precision_score(y, s, sample_weight=w),
        "log_loss": lambda: skm.log_loss(y, s, sample_weight=w, labels=[0, 1]),
        "brier": lambda: skm.brier_score_loss(y, s, sample_weight=w),
        "accuracy": lambda: skm.accuracy_score(y, pred, sample_weight=w),
        "precision": lambda: skm.precision_score(y, pred, sample_weight=w, **nan),
        "recall": lambda: skm.recall_score(y, pred, sample_weight=w, **nan),
        "f1": lambda: skm.f1_score(y, pred, sample_weight=w, **nan),
    }
    return float(table[name]())


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = (rng.random(800) < 0.3).astype(np.int64)
    s = np.round(np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1), 2)  # rounded: ties
    return y, s


@pytest.mark.parametrize(
    "name", ["roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1"]
)
def test_binary_metrics_equal_sklearn(name: str, scored) -> None:
    y, s = scored
    assert _value(name, *_binary(y, s)) == pytest.approx(_sklearn_binary(name, y, s), abs=1e-12)


@pytest.mark.parametrize("p", [0.3, 0.5, 0.9, 1.0])
def test_trade_offs_and_ece_equal_sklearn_curves(p: float, scored) -> None:
    y, s = scored
    data, out = _binary(y, s)
    assert _value(f"recall@precision{p}", data, out) == pytest.approx(
        _recall_at_precision(y, s, p), abs=1e-12
    )
    assert _value(f"precision@recall{p}", data, out) == pytest.approx(
        _precision_at_recall(y, s, p), abs=1e-12
    )
    assert _value("ece", data, out) == pytest.approx(_ece_reference(y, s), abs=1e-12)


def test_count_weights_equal_metrics_on_the_resampled_rows(scored) -> None:
    """The bootstrap's trick: bincount weights give exactly the metric of the resample."""
    y, s = scored
    data, out = _binary(y, s)
    idx = np.random.default_rng(3).integers(0, len(y), len(y))
    counts = np.bincount(idx, minlength=len(y))
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "recall@precision0.6"):
        resampled = (
            _recall_at_precision(y[idx], s[idx], 0.6)
            if name.startswith("recall@")
            else _sklearn_binary(name, y[idx], s[idx])
        )
        assert _value(name, data, out, counts) == pytest.approx(resampled, abs=1e-12), name


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=2, max_size=80),
    st.integers(0, 2**31 - 1),
)
def test_property_auc_ap_and_resamples_match_sklearn(rows, seed) -> None:
    y = np.array([int(a) for a, _ in rows])
    s = np.array([b / 20 for _, b in rows])  # coarse grid: many ties
    data, out = _binary(y, s)
    if 0 < y.sum() < len(y):
        assert _value("roc_auc", data, out) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
        assert _value("pr_auc", data, out) == pytest.approx(
            skm.average_precision_score(y, s), abs=1e-12
        )
    else:  # a single class: undefined, never a number
        assert np.isnan(_value("roc_auc", data, out))
    idx = np.random.default_rng(seed).integers(0, len(y), len(y))
    got = _value("roc_auc", data, out, np.bincount(idx, minlength=len(y)))
    if 0 < y[idx].sum() < len(y):
        assert got == pytest.approx(skm.roc_auc_score(y[idx], s[idx]), abs=1e-12)
    else:
        assert np.isnan(got)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=2, max_size=60))
def test_property_regression_matches_sklearn(rows) -> None:
    y = np.array([a for a, _ in rows])
    p = np.array([b for _, b in rows])
    data, out = EvalSet("regression", y), Outputs(prediction=p)
    assert _value("rmse", data, out) == pytest.approx(
        skm.root_mean_squared_error(y, p), rel=1e-9, abs=1e-9
    )
    assert _value("mae", data, out) == pytest.approx(
        skm.mean_absolute_error(y, p), rel=1e-9, abs=1e-9
    )
    assert _value("mape", data, out) == pytest.approx(
        skm.mean_absolute_percentage_error(y, p), rel=1e-9
    )
    assert _value("r2", data, out) == pytest.approx(skm.r2_score(y, p), rel=1e-9, abs=1e-9)


def test_multiclass_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 500)
    proba = rng.dirichlet(np.ones(4), 500)
    proba[np.arange(500), y] += 0.3
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    data = EvalSet("multiclass_classification", y, classes=["a", "b", "c", "d"])
    out = Outputs(pred=pred, proba=proba)
    assert _value("accuracy", data, out) == pytest.approx(skm.accuracy_score(y, pred))
    assert _value("f1_macro", data, out) == pytest.approx(
        skm.f1_score(y, pred, average="macro", zero_division=0)
    )
    assert _value("f1_micro", data, out) == pytest.approx(skm.f1_score(y, pred, average="micro"))
    for k in (1, 2, 3):
        assert _value(f"top_k_accuracy@{k}", data, out) == pytest.approx(
            skm.top_k_accuracy_score(y, proba, k=k, labels=[0, 1, 2, 3])
        )
    # a class never predicted nor present in a resample drops out of the macro average, as in sklearn
    idx = np.flatnonzero(y != 3)
    w = np.zeros(500, dtype=np.int64)
    w[idx] = 1
    assert _value("f1_macro", data, Outputs(pred=np.where(pred == 3, 0, pred)), w) == pytest.approx(
        skm.f1_score(y[idx], np.where(pred == 3, 0, pred)[idx], average="macro", zero_division=0)
    )


def _queries(n_queries: int = 30, size: int = 8, seed: int = 2):
    rng = np.random.default_rng(seed)
    query = np.repeat(np.arange(n_queries), size)
    rel = rng.integers(0, 4, n_queries * size).astype(float)
    score = np.round(rel + rng.normal(0, 1.5, len(rel)), 1)  # ties within queries
    return query, rel, score


@pytest.mark.parametrize("k", [1, 3, 5, 8])
def test_ndcg_equals_sklearn_per_query_with_ties(k: int) -> None:
    query, rel, score = _queries()
    data, out = EvalSet("ranking", rel, query=query), Outputs(score=score)
    expected = skm.ndcg_score(rel.reshape(30, 8), score.reshape(30, 8), k=k)
    assert _value(f"ndcg@{k}", data, out, np.ones(30, dtype=np.int64)) == pytest.approx(expected)


def test_map_mrr_recall_at_k() -> None:
    query, rel, score = _queries()
    score = score + np.arange(len(score)) * 1e-9  # no ties: a single defined order
    data, out = EvalSet("ranking", rel, query=query), Outputs(score=score)
    ones = np.ones(30, dtype=np.int64)
    ap, mrr, recall3 = [], [], []
    for q in range(30):
        r, s = rel[query == q] > 0, score[query == q]
        ap.append(skm.average_precision_score(r, s) if r.any() else 0.0)
        ranked = r[np.argsort(-s)]
        mrr.append(1 / (np.argmax(ranked) + 1) if ranked.any() else 0.0)
        recall3.append(ranked[:3].sum() / ranked.sum() if ranked.any() else 0.0)
    assert _value("map@8", data, out, ones) == pytest.approx(np.mean(ap))
    assert _value("mrr", data, out, ones) == pytest.approx(np.mean(mrr))
    assert _value("recall@3", data, out, ones) == pytest.approx(np.mean(recall3))


def test_fairness_metrics_equal_fairlearn(scored) -> None:
    from fairlearn import metrics as flm

    from mlhandoff.evaluate import fairness

    y, s = scored
    pred = (s >= 0.5).astype(np.int64)
    groups = np.random.default_rng(4).choice(["p", "q", "r"], len(y))
    codes = np.searchsorted(["p", "q", "r"], groups)
    data = EvalSet(BINARY, y, slices={"g": Slices(codes, ["p", "q", "r"])})
    out = Outputs(score=s, pred=pred)
    ones = Weights(np.ones((1, len(y)), dtype=np.int64))
    expected = {
        "demographic_parity_difference": flm.demographic_parity_difference(
            y, pred, sensitive_features=groups
        ),
        "demographic_parity_ratio": flm.demographic_parity_ratio(
            y, pred, sensitive_features=groups
        ),
        "equalized_odds_difference": flm.equalized_odds_difference(
            y, pred, sensitive_features=groups
        ),
        "four_fifths_ratio": flm.demographic_parity_ratio(y, pred, sensitive_features=groups),
    }
    for name, want in expected.items():
        rates = fairness.rates_job(name, data, out, codes, np.arange(3))
        assert float(fairness.aggregate(name, rates(ones))[0]) == pytest.approx(want), name


def test_bootstrap_is_seeded_paired_and_percentile() -> None:
    blocks = list(bootstrap.index_blocks(50, 7, seed=3))
    again = np.concatenate(list(bootstrap.index_blocks(50, 7, seed=3)))
    assert np.array_equal(np.concatenate(blocks), again) and again.shape == (7, 50)
    counts = bootstrap.counts(again)
    assert counts.shape == (7, 50) and (counts.sum(axis=1) == 50).all()
    i = bootstrap.interval(0.5, np.array([0.1, 0.2, 0.3, np.nan]), 0.5)
    assert (i.low, i.high, i.undefined) == pytest.approx((0.15, 0.25, 1)) and i.thin


def test_metric_names_suggest_and_check_the_task() -> None:
    assert parse_metric("ROC_AUC").name == "roc_auc"
    assert parse_metric("recall@precision0.90").param == 0.9
    assert parse_metric("ndcg@10").param == 10
    assert not parse_metric("log_loss").greater_is_better
    with pytest.raises(UnknownMetric, match="did you mean 'roc_auc'"):
        parse_metric("roc_aux")
    with pytest.raises(UnknownMetric, match="does not apply to regression"):
        parse_metric("roc_auc", "regression")
    with pytest.raises(UnknownMetric, match="unknown metric 'ndcg@0'"):
        parse_metric("ndcg@0")
