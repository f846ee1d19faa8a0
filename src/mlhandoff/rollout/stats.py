"""The statistics of a canary: sample sizes, anytime-valid confidence sequences, and the
fixed-sample intervals of a Kayenta-style comparison.

Anytime-valid means the interval holds at every look at once: however often the judge reads the
log, the chance that any interval ever misses the truth stays at or under alpha, so a rule that
graduates only on an interval's verdict graduates falsely at most alpha of the time.

* Rates and means: the mixture sequential probability ratio test's confidence sequence
  (Johari, Pekelis, Walsh, "Always valid inference", 2017) on the difference of the arms'
  means, ``half-width = sqrt(V (V + tau^2) / tau^2 * log((V + tau^2) / (V alpha^2)))`` with
  ``V`` the variance of the difference; ``tau`` is the rule's own scale (tolerance or mde).
  Rates use the variance of (x + 1) / (n + 2), so a zero count never claims zero spread.
* Quantiles (latency p95): for each arm, the count of values at or under the true quantile is
  a sum of Bernoulli(p); a normal-mixture boundary for it (Howard, Ramdas, McAuliffe, Sekhon,
  2021; sub-Gaussian with the exact variance proxy of a Bernoulli) turns order statistics into
  a confidence sequence of the quantile (Howard and Ramdas, 2022). The ratio's sequence is the
  quotient of the arms' sequences, each at alpha / 2. Non-asymptotic, any arm sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()


def z(p: float) -> float:
    return _NORMAL.inv_cdf(p)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def to_list(self) -> list[float]:
        return [self.low, self.high]


# ---- anytime-valid confidence sequences -------------------------------------------------------


def mixture_halfwidth(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the mSPRT confidence sequence for an estimate of variance ``variance``."""
    if variance <= 0:
        return 0.0
    v = variance
    return math.sqrt(v * (v + tau2) / tau2 * math.log((v + tau2) / (v * alpha**2)))


def smoothed_rate_variance(successes: float, n: float) -> float:
    """Variance of a rate's estimate from (x + 1) / (n + 2): never zero, even with no events."""
    p = (successes + 1.0) / (n + 2.0)
    return p * (1.0 - p) / n


def bernoulli_proxy(p: float) -> float:
    """The smallest sub-Gaussian variance proxy of a Bernoulli(p) (Kearns and Saul)."""
    if abs(p - 0.5) < 1e-12:
        return 0.25
    return (1.0 - 2.0 * p) / (2.0 * math.log((1.0 - p) / p))


def mixture_boundary(intrinsic_time: float, rho: float, alpha: float) -> float:
    """Two-sided normal-mixture boundary: |S_t| stays under it at every t with prob. 1 - alpha."""
    v = intrinsic_time + rho
    return math.sqrt(v * math.log(v / (rho * alpha**2)))


#: The quantile boundary is tightest around this many values per arm.
QUANTILE_TUNED_N = 10_000


def quantile_sequence(sorted_values: np.ndarray, p: float, alpha: float) -> Interval:
    """Confidence sequence of the p-quantile from an arm's values (sorted ascending)."""
    n = len(sorted_values)
    proxy = bernoulli_proxy(p)
    u = mixture_boundary(n * proxy, QUANTILE_TUNED_N * proxy, alpha)
    lo_rank = math.ceil(n * p - u)  # 1-based order statistics
    hi_rank = math.ceil(n * p + u)
    low = float(sorted_values[lo_rank - 1]) if lo_rank >= 1 else -math.inf
    high = float(sorted_values[hi_rank - 1]) if hi_rank <= n else math.inf
    return Interval(low, high)


def ratio_sequence(candidate: Interval, baseline: Interval) -> Interval:
    """Candidate/baseline from two positive intervals (each at alpha / 2)."""
    low = candidate.low / baseline.high if baseline.high > 0 and candidate.low > 0 else 0.0
    high = candidate.high / baseline.low if baseline.low > 0 else math.inf
    return Interval(low, high)


# ---- fixed-sample intervals (the Kayenta view of one look) ------------------------------------


@dataclass(frozen=True)
class ShiftEstimate:
    estimate: float
    interval: Interval
    p_value: float


def agresti_caffo(x_c: float, n_c: float, x_b: float, n_b: float, alpha: float) -> ShiftEstimate:
    """Difference of two rates (candidate - baseline) with the Agresti-Caffo interval."""
    pc, pb = (x_c + 1) / (n_c + 2), (x_b + 1) / (n_b + 2)
    se = math.sqrt(pc * (1 - pc) / (n_c + 2) + pb * (1 - pb) / (n_b + 2))
    diff = x_c / n_c - x_b / n_b
    centre = pc - pb
    half = z(1 - alpha / 2) * se
    p_value = _two_sided_p(abs(centre) / se) if se > 0 else 1.0
    return ShiftEstimate(diff, Interval(centre - half, centre + half), p_value)


def hodges_lehmann(candidate: np.ndarray, baseline: np.ndarray, alpha: float) -> ShiftEstimate:
    """Hodges-Lehmann shift (median of candidate - baseline pairs) with the Mann-Whitney
    interval and two-sided p-value (normal approximation, tie-corrected).

    The k-th smallest of the n*m pairwise differences is found by bisection on its value,
    counting pairs with sorted arrays: O((n + m) log) per step, never the n*m pairs.
    """
    c = np.sort(np.asarray(candidate, dtype=np.float64))
    b = np.sort(np.asarray(baseline, dtype=np.float64))
    n, m = len(c), len(b)
    total = n * m
    ranks = _ranks(np.concatenate([c, b]))
    u = float(ranks[:n].sum() - n * (n + 1) / 2)
    _, counts = np.unique(np.concatenate([c, b]), return_counts=True)
    ties = float((counts**3 - counts).sum())
    var = n * m / 12.0 * ((n + m + 1) - ties / ((n + m) * (n + m - 1)))
    sd = math.sqrt(var) if var > 0 else 0.0
    p_value = _two_sided_p((abs(u - total / 2) - 0.5) / sd) if sd > 0 else 1.0
    k = max(1, math.floor(total / 2 - z(1 - alpha / 2) * sd))
    low = _kth_difference(c, b, k)
    high = _kth_difference(c, b, total - k + 1)
    estimate = (_kth_difference(c, b, (total + 1) // 2) + _kth_difference(c, b, total // 2 + 1)) / 2
    return ShiftEstimate(estimate, Interval(low, high), min(1.0, p_value))


def _two_sided_p(score: float) -> float:
    return math.erfc(max(score, 0.0) / math.sqrt(2))


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    first = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(values)]
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _count_at_most(c: np.ndarray, b: np.ndarray, d: float) -> int:
    """#{(i, j): c_i - b_j <= d}, with c and b sorted."""
    return int((len(b) - np.searchsorted(b, c - d, side="left")).sum())


def _kth_difference(c: np.ndarray, b: np.ndarray, k: int) -> float:
    """The k-th smallest (1-based) of the pairwise differences c_i - b_j."""
    lo, hi = float(c[0] - b[-1]), float(c[-1] - b[0])
    if _count_at_most(c, b, lo) >= k:
        return lo
    scale = max(abs(lo), abs(hi), 1e-12)
    for _ in range(200):
        if hi - lo <= 1e-12 * scale:
            break
        mid = (lo + hi) / 2
        if _count_at_most(c, b, mid) >= k:
            hi = mid
        else:
            lo = mid
    return hi


# ---- fixed-horizon sample sizes (the plan; compared with statsmodels in the tests) ------------


def cohens_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


def proportions_n(p1: float, p2: float, alpha: float, power: float, two_sided: bool) -> int:
    """Per-arm n for two proportions (arcsine effect size, normal test), as statsmodels'
    ``NormalIndPower().solve_power(proportion_effectsize(p2, p1), ...)``."""
    h = abs(cohens_h(p1, p2))
    return _normal_n(h, alpha, power, two_sided)


def _normal_n(effect: float, alpha: float, power: float, two_sided: bool) -> int:
    za = z(1 - alpha / 2) if two_sided else z(1 - alpha)

    def achieved(n: float) -> float:
        shift = effect * math.sqrt(n / 2)
        out = 1 - _NORMAL.cdf(za - shift)
        if two_sided:
            out += _NORMAL.cdf(-za - shift)
        return out

    return _smallest_n(achieved, power)


def means_n(effect: float, sd: float, alpha: float, power: float, two_sided: bool) -> int:
    """Per-arm n for a difference of means (two-sample t-test, noncentral t), as statsmodels'
    ``TTestIndPower().solve_power(effect / sd, ...)``."""
    from scipy import stats

    d = abs(effect) / sd
    tail = alpha / 2 if two_sided else alpha

    def achieved(n: float) -> float:
        df = 2 * n - 2
        crit = float(stats.t.isf(tail, df))
        nc = d * math.sqrt(n / 2)
        out = float(stats.nct.sf(crit, df, nc))
        if two_sided:
            out += float(stats.nct.cdf(-crit, df, nc))
        return out

    return _smallest_n(achieved, power, low=2.0)


def _smallest_n(achieved: Callable[[float], float], power: float, low: float = 1.0) -> int:
    """The smallest n (found as a real number, then rounded up) whose power reaches ``power``."""
    hi = max(low * 2, 4.0)
    while achieved(hi) < power:
        hi *= 2
        if hi > 1e13:
            raise ValueError("the effect is too small to detect with any sample")
    lo = low
    while hi - lo > 1e-6:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if achieved(mid) >= power else (mid, hi)
    return math.ceil(hi - 1e-9)


def quantile_log_sd(p: float, log_sd: float) -> float:
    """Per-value spread of log(sample p-quantile) under a log-normal: the asymptotic
    sqrt(p (1 - p)) / density, in log units."""
    return math.sqrt(p * (1 - p)) / _NORMAL.pdf(z(p)) * log_sd


def seconds_to_decide(
    width: Callable[[float], float], se: Callable[[float], float], margin: float, power: float
) -> float:
    """The first time t at which a sequence of half-width ``width(t)``, around an estimate
    ``margin`` away from the boundary with standard error ``se(t)``, clears the boundary with
    probability ``power``; inf when it never does within 30 years."""

    def clears(t: float) -> bool:
        return margin >= width(t) + z(power) * se(t)

    hi = 1.0
    while not clears(hi):
        hi *= 2
        if hi > 1e9:
            return math.inf
    lo = 0.0
    while hi - lo > max(1e-3, hi * 1e-5):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if clears(mid) else (mid, hi)
    return hi


def mean_decision_time(
    sd: float, margin: float, tau: float, alpha: float, power: float, rate_c: float, rate_b: float
) -> float:
    """Time until the mSPRT sequence of a difference of means decides, the arms receiving
    ``rate_c`` and ``rate_b`` values per unit of time (rates of 1: the per-arm n)."""

    def variance(t: float) -> float:
        return sd**2 * (1 / (rate_c * t) + 1 / (rate_b * t))

    return seconds_to_decide(
        lambda t: mixture_halfwidth(variance(t), tau**2, alpha),
        lambda t: math.sqrt(variance(t)),
        margin,
        power,
    )


def quantile_decision_time(
    p: float,
    log_sd: float,
    log_margin: float,
    alpha: float,
    power: float,
    rate_c: float,
    rate_b: float,
) -> float:
    """The same for the ratio of two p-quantiles, under a log-normal with ``log_sd``: each arm's
    order-statistic sequence (at alpha / 2) spans about boundary / (n * density) in log units."""
    proxy = bernoulli_proxy(p)
    density = _NORMAL.pdf(z(p)) / log_sd  # of log values at the quantile

    def arm_width(n: float) -> float:
        return mixture_boundary(n * proxy, QUANTILE_TUNED_N * proxy, alpha / 2) / (n * density)

    per_value = quantile_log_sd(p, log_sd)
    return seconds_to_decide(
        lambda t: arm_width(rate_c * t) + arm_width(rate_b * t),
        lambda t: per_value * math.sqrt(1 / (rate_c * t) + 1 / (rate_b * t)),
        log_margin,
        power,
    )
