"""Paired bootstrap of ROC AUC on a 1M-row binary test set: mlhandoff vs a scikit-learn loop.

Bar (issue 4): >= 20x faster than calling ``sklearn.metrics.roc_auc_score`` on the same resample
indices, with identical intervals. Both sides draw the same index blocks
(``mlhandoff.evaluate.bootstrap.index_blocks``) and take the same percentiles; index drawing is
timed on both sides.

    python bench/evaluate.py [--rows 1000000] [--resamples 1000] [--sklearn-resamples N]

``--sklearn-resamples`` (default: all) times the loop on the first N resamples only and
extrapolates; intervals are then compared on those N.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from mlhandoff.evaluate import bootstrap
from mlhandoff.evaluate.data import EvalSet, Outputs
from mlhandoff.evaluate.metrics import statistic
from mlhandoff.spec.metric_names import parse_metric


def _data(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.1).astype(np.int64)
    model = 1 / (1 + np.exp(-(rng.normal(size=rows) + 1.2 * y)))
    # the baseline's scores are rounded: many ties, handled as scikit-learn handles them
    baseline = np.round(1 / (1 + np.exp(-(rng.normal(size=rows) + 0.9 * y))), 3)
    return y, model, baseline


def _intervals(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    i = bootstrap.interval(float(np.nanmean(samples)), samples, confidence)
    assert i.low is not None and i.high is not None
    return i.low, i.high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--sklearn-resamples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, r = args.rows, args.resamples
    r_sk = min(args.sklearn_resamples or r, r)
    y, model, base = _data(n)
    data = EvalSet("binary_classification", y)
    ref = parse_metric("roc_auc")

    start = time.perf_counter()
    jobs = [
        statistic(ref, data, Outputs(score=model, pred=(model >= 0.5).astype(np.int64))),
        statistic(ref, data, Outputs(score=base, pred=(base >= 0.5).astype(np.int64))),
    ]
    ours_m, ours_b = bootstrap.run(jobs, n, r, args.seed)
    ours_s = time.perf_counter() - start

    start = time.perf_counter()
    sk_m, sk_b = [], []
    for block in bootstrap.index_blocks(n, r, args.seed):
        for idx in block:
            if len(sk_m) == r_sk:
                break
            sk_m.append(roc_auc_score(y[idx], model[idx]))
            sk_b.append(roc_auc_score(y[idx], base[idx]))
        if len(sk_m) == r_sk:
            break
    sk_s = (time.perf_counter() - start) * r / r_sk

    sk_delta = np.array(sk_m) - np.array(sk_b)
    ours_delta = (ours_m - ours_b)[:r_sk]
    rows = [
        ("model AUC", _intervals(ours_m[:r_sk]), _intervals(np.array(sk_m))),
        ("baseline AUC", _intervals(ours_b[:r_sk]), _intervals(np.array(sk_b))),
        ("paired delta", _intervals(ours_delta), _intervals(sk_delta)),
    ]
    max_diff = float(np.max(np.abs(np.r_[ours_m[:r_sk] - sk_m, ours_b[:r_sk] - sk_b])))
    print(
        f"{n:,} rows, {r} paired bootstrap resamples (seed {args.seed}), ROC AUC, 95% percentile intervals"
    )
    print(f"{'':14} {'mlhandoff':>28} {'sklearn loop':>28}")
    for name, ours, theirs in rows:
        print(f"{name:14} [{ours[0]:.12f}, {ours[1]:.12f}] [{theirs[0]:.12f}, {theirs[1]:.12f}]")
    same = all(np.allclose(o, t, rtol=0, atol=1e-12) for _, o, t in rows)
    print(
        f"largest per-resample |AUC difference|: {max_diff:.2e}; intervals identical (1e-12): {same}"
    )
    note = f" (extrapolated from {r_sk} resamples)" if r_sk < r else ""
    print(f"{'time':14} {ours_s:>27.2f}s {sk_s:>27.2f}s{note}")
    print(f"speed-up: {sk_s / ours_s:.1f}x (bar: >= 20x)")


if __name__ == "__main__":
    main()
