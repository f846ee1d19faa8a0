"""Drift statistics between a reference's and a window's field profiles (counts in the same slots).

Each takes the two :class:`~mlhandoff.monitor.profile.FieldProfile` and returns a float, or
None when the window has nothing to compare (no rows, or no non-null values). The drift
statistics compare the *non-null* slots (``below``/``above`` and ``unseen`` included: a flood of
out-of-range values is drift); nulls have their own statistic.

Conventions, each checked against scipy in ``tests/test_monitor_stats.py``:

* ``EPSILON`` (1e-4) is added to the share of **every** slot of **both** distributions, which are
  then renormalised to sum to 1, before PSI and KL take logarithms. An empty slot in either
  distribution then has a finite log, and the two are smoothed alike (Evidently fills only the
  current distribution's empty bins, which inflates KL: its issue #334).
* ``psi`` = Σ (q − p) ln(q / p); ``kl`` = KL(current ‖ reference) = Σ q ln(q / p), in nats
  (``scipy.stats.entropy(q, p)``), with p the reference and q the window.
* ``js`` is the Jensen–Shannon **distance** (the square root of the divergence), base 2, so in
  [0, 1] (``scipy.spatial.distance.jensenshannon(p, q, base=2)``); it needs no epsilon.
* ``ks`` is the p-value of the two-sample Kolmogorov–Smirnov test with the statistic D taken
  on the bins: the largest gap between the two CDFs at the reference's bin edges. That is the
  raw-data D when every value sits on an edge (integers, categories), and never larger than it
  otherwise (a gap inside a bin is not seen). The p-value is scipy's asymptotic one
  (``ks_2samp(method="asymp")``: ``kstwo.sf(D, round(n·m / (n + m)))``).
* ``chi2`` is the p-value of the chi-square test of homogeneity on the 2 × k table of counts
  (slots empty in both dropped; no continuity correction), as ``scipy.stats.chi2_contingency``.
* ``wasserstein`` is the Wasserstein-1 distance between the two binned distributions, each
  slot's mass at the mean of the values counted in it (so values far beyond the reference's
  range count at their distance), divided by the reference's standard deviation (1 when the
  reference is constant). Within one bin width of the raw-data distance.
* ``null_rate`` is the window's null share minus the reference's.
* ``unseen_rate`` is the share of the window's non-null values outside the reference's
  categories.

On large windows the p-values (ks, chi2) flag shifts too small to matter — a million rows make
any difference significant — which is why the default statistic is ``psi``, a distance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlhandoff.monitor.profile import FieldProfile

EPSILON = 1e-4


def shares(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum()


def smoothed(counts: np.ndarray) -> np.ndarray:
    """Shares with ``EPSILON`` added to every slot, renormalised."""
    return (shares(counts) + EPSILON) / (1.0 + EPSILON * counts.size)


def psi(ref: FieldProfile, cur: FieldProfile) -> float | None:
    if not _comparable(ref, cur):
        return None
    p, q = smoothed(ref.values), smoothed(cur.values)
    return float(np.sum((q - p) * np.log(q / p)))


def kl(ref: FieldProfile, cur: FieldProfile) -> float | None:
    if not _comparable(ref, cur):
        return None
    p, q = smoothed(ref.values), smoothed(cur.values)
    return float(np.sum(q * np.log(q / p)))


def js(ref: FieldProfile, cur: FieldProfile) -> float | None:
    if not _comparable(ref, cur):
        return None
    p, q = shares(ref.values), shares(cur.values)
    m = (p + q) / 2
    divergence = 0.5 * _kl_base2(p, m) + 0.5 * _kl_base2(q, m)
    return float(np.sqrt(max(divergence, 0.0)))


def _kl_base2(a: np.ndarray, b: np.ndarray) -> float:
    nz = a > 0
    return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))


def ks_statistic(ref: FieldProfile, cur: FieldProfile) -> float | None:
    """D on the bins: the largest gap between the two CDFs over the ordered slots."""
    if not _comparable(ref, cur):
        return None
    gap = np.cumsum(shares(ref.values)) - np.cumsum(shares(cur.values))
    return float(np.max(np.abs(gap)))


def ks(ref: FieldProfile, cur: FieldProfile) -> float | None:
    from scipy.stats import kstwo

    d = ks_statistic(ref, cur)
    if d is None:
        return None
    m, n = sorted([float(ref.values.sum()), float(cur.values.sum())], reverse=True)
    return float(np.clip(kstwo.sf(d, np.round(m * n / (m + n))), 0.0, 1.0))


def chi2(ref: FieldProfile, cur: FieldProfile) -> float | None:
    from scipy.stats import chi2 as chi2_dist

    if not _comparable(ref, cur):
        return None
    table = np.vstack([ref.values, cur.values]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0  # one slot holds everything in both: nothing differs
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return float(chi2_dist.sf(statistic, table.shape[1] - 1))


def wasserstein(ref: FieldProfile, cur: FieldProfile) -> float | None:
    if not _comparable(ref, cur) or ref.sums is None or cur.sums is None:
        return None
    u_at, u_w = _masses(ref)
    v_at, v_w = _masses(cur)
    if u_w.sum() == 0 or v_w.sum() == 0:
        return None
    distance = wasserstein_1d(u_at, v_at, u_w, v_w)
    _, std = ref.mean_std()
    return distance / (std if std > 0 else 1.0)


def _masses(profile: FieldProfile) -> tuple[np.ndarray, np.ndarray]:
    """Each non-null slot's count at the mean of the finite values in it."""
    assert profile.sums is not None
    counts = profile.values.astype(np.float64)
    sums = profile.sums[1:]
    keep = (counts > 0) & np.isfinite(sums)
    return sums[keep] / counts[keep], counts[keep]


def wasserstein_1d(
    u_values: np.ndarray, v_values: np.ndarray, u_weights: np.ndarray, v_weights: np.ndarray
) -> float:
    """W1 = ∫ |F_u − F_v| dx for two weighted point sets (what scipy's wasserstein_distance is)."""
    points = np.concatenate([u_values, v_values])
    order = np.argsort(points, kind="mergesort")
    points = points[order]
    weights = np.concatenate([u_weights / u_weights.sum(), -v_weights / v_weights.sum()])[order]
    cdf_gap = np.cumsum(weights)[:-1]
    return float(np.sum(np.abs(cdf_gap) * np.diff(points)))


def null_rate(ref: FieldProfile, cur: FieldProfile) -> float | None:
    if cur.rows == 0 or ref.rows == 0:
        return None
    return cur.nulls / cur.rows - ref.nulls / ref.rows


def unseen_rate(ref: FieldProfile, cur: FieldProfile) -> float | None:
    present = int(cur.values.sum())
    if present == 0:
        return None
    return cur.unseen / present


def _comparable(ref: FieldProfile, cur: FieldProfile) -> bool:
    return ref.values.sum() > 0 and cur.values.sum() > 0


Statistic = Callable[[FieldProfile, FieldProfile], float | None]

#: Every statistic a drift rule can name (``spec.monitoring.STATISTICS`` says where each fits).
STATISTIC_FUNCTIONS: dict[str, Statistic] = {
    "psi": psi,
    "kl": kl,
    "js": js,
    "ks": ks,
    "chi2": chi2,
    "wasserstein": wasserstein,
    "null_rate": null_rate,
    "unseen_rate": unseen_rate,
}


def positive_share(profile: FieldProfile, positive: str) -> float | None:
    """The share of non-null labels that are the positive class (``positive``, as text)."""
    present = int(profile.values.sum())
    if present == 0 or profile.categories is None:
        return None
    if positive not in profile.categories:
        return 0.0
    return int(profile.counts[profile.categories.index(positive) + 1]) / present
