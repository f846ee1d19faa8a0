"""Ranking metrics per query: NDCG@k (scikit-learn's, ties averaged), MAP@k, MRR, recall@k.

Each query gets one value; a metric is their (resample-weighted) mean, so the bootstrap resamples
whole queries. Documents are ordered by descending score; ties keep input order, except in NDCG,
which averages the gain over tied documents exactly as ``sklearn.metrics.ndcg_score`` does.
A query without any relevant document scores 0 on every metric (scikit-learn's NDCG convention).
MAP@k divides by ``min(k, relevant documents)``; relevance > 0 counts as relevant.
"""

from __future__ import annotations

import numpy as np

from mlhandoff.spec.metric_names import MetricRef


def per_query(
    ref: MetricRef, query: np.ndarray, relevance: np.ndarray, score: np.ndarray
) -> np.ndarray:
    """One value per query code 0..Q-1."""
    n_queries = int(query.max()) + 1 if len(query) else 0
    order = np.lexsort((np.arange(len(score)), -score, query))
    q, rel, s = query[order], relevance[order], score[order]
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    position = np.arange(len(q)) - np.repeat(starts, np.diff(np.r_[starts, len(q)]))
    k = int(ref.param) if ref.param is not None else len(q)
    if ref.base == "ndcg@":
        return _ndcg(q, rel, s, starts, k, n_queries)
    hit = rel > 0
    relevant = np.bincount(q, weights=hit, minlength=n_queries)
    if ref.base == "mrr":
        first = np.full(n_queries, np.inf)
        np.minimum.at(first, q[hit], position[hit])
        return np.where(np.isfinite(first), 1.0 / (first + 1.0), 0.0)
    in_k = position < k
    if ref.base == "recall@":
        found = np.bincount(q, weights=hit & in_k, minlength=n_queries)
        return np.divide(found, relevant, out=np.zeros(n_queries), where=relevant > 0)
    # map@k: mean over the top k of precision at each relevant document
    cum = np.cumsum(hit)
    before: np.ndarray = np.repeat(cum[starts] - hit[starts], np.diff(np.r_[starts, len(q)]))
    precision_here = (cum - before) / (position + 1.0)
    summed = np.bincount(q, weights=np.where(hit & in_k, precision_here, 0.0), minlength=n_queries)
    norm = np.minimum(relevant, k)
    return np.divide(summed, norm, out=np.zeros(n_queries), where=norm > 0)


def _ndcg(
    q: np.ndarray, rel: np.ndarray, s: np.ndarray, starts: np.ndarray, k: int, n_queries: int
) -> np.ndarray:
    out = np.zeros(n_queries)
    ends = np.r_[starts[1:], len(q)]
    for start, end in zip(starts, ends, strict=True):
        gains, scores = rel[start:end], s[start:end]
        discount = 1.0 / np.log2(np.arange(len(gains)) + 2.0)
        discount[k:] = 0.0
        ideal = float(np.sort(gains)[::-1] @ discount)
        if ideal == 0:
            continue
        out[q[start]] = _tie_averaged_dcg(gains, scores, np.cumsum(discount)) / ideal
    return out


def _tie_averaged_dcg(gains: np.ndarray, scores: np.ndarray, discount_cumsum: np.ndarray) -> float:
    _, inverse, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    ranked = np.zeros(len(counts))
    np.add.at(ranked, inverse, gains)
    ranked /= counts
    groups = np.cumsum(counts) - 1
    sums = np.empty(len(counts))
    sums[0] = discount_cumsum[groups[0]]
    sums[1:] = np.diff(discount_cumsum[groups])
    return float((ranked * sums).sum())
