"""Fairness metrics across the slices of a column, with fairlearn's definitions.

- demographic parity difference / ratio: max - min / min / max of the selection rate (share
  predicted positive) over slices (``fairlearn.metrics.demographic_parity_*``, between groups);
- equalized odds difference: the larger of the spreads (max - min) of the true- and
  false-positive rates over slices (fairlearn's ``agg="worst_case"``);
- four-fifths ratio: the lowest selection rate divided by the highest (the EEOC rule of thumb
  requires >= 0.8); the slices below the bound are named.

Only slices with at least ``min_slice_size`` rows are compared (the caller drops the others and
reports them); a slice whose rate is undefined (no positives for a TPR) is left out and named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlhandoff.evaluate.data import EvalSet, Outputs
from mlhandoff.evaluate.metrics import Weights

RATE_NAMES = {
    "selection": "selection rate",
    "tpr": "true positive rate",
    "fpr": "false positive rate",
}


@dataclass(frozen=True)
class GroupRates:
    """Per-slice rates: ``rates[kind]`` has shape (B, groups)."""

    rates: dict[str, np.ndarray]


def rates_job(
    metric: str, data: EvalSet, out: Outputs, codes: np.ndarray, groups: np.ndarray
) -> Callable[[Weights], GroupRates]:
    """Weighted per-group rates the metric needs, for the given group codes."""
    assert out.pred is not None
    y, pred = data.y.astype(np.float64), out.pred.astype(np.float64)
    onehot = (codes[:, None] == groups[None, :]).astype(np.float64)
    kinds = ("tpr", "fpr") if metric == "equalized_odds_difference" else ("selection",)
    parts = {
        "selection": (onehot * pred[:, None], onehot),
        "tpr": (onehot * (y * pred)[:, None], onehot * y[:, None]),
        "fpr": (onehot * ((1 - y) * pred)[:, None], onehot * (1 - y)[:, None]),
    }
    matrix = np.concatenate([m for k in kinds for m in parts[k]], axis=1)
    g = len(groups)

    def job(w: Weights) -> GroupRates:
        sums = w.floats @ matrix
        rates = {}
        for i, kind in enumerate(kinds):
            num, den = (
                sums[:, 2 * i * g : (2 * i + 1) * g],
                sums[:, (2 * i + 1) * g : (2 * i + 2) * g],
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                rates[kind] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return GroupRates(rates)

    return job


def aggregate(metric: str, rates: GroupRates) -> np.ndarray:
    """The fairness metric per resample, from per-group rates (NaN where a rate is undefined)."""

    def spread(r: np.ndarray) -> np.ndarray:
        return r.max(axis=1) - r.min(axis=1)

    if metric == "equalized_odds_difference":
        return np.maximum(spread(rates.rates["tpr"]), spread(rates.rates["fpr"]))
    sel = rates.rates["selection"]
    if metric == "demographic_parity_difference":
        return spread(sel)
    with np.errstate(divide="ignore", invalid="ignore"):
        return sel.min(axis=1) / sel.max(axis=1)


def explain(
    metric: str, rates: GroupRates, names: list[str], threshold: float | None
) -> tuple[str, list[str]]:
    """Which slices set the value (point estimate), and which break a four-fifths bound."""
    parts, breaking = [], []
    for kind, values in rates.rates.items():
        row = values[0]
        if np.isnan(row).all():
            continue
        hi, lo = int(np.nanargmax(row)), int(np.nanargmin(row))
        parts.append(
            f"{RATE_NAMES[kind]} highest in {names[hi]} ({row[hi]:.3g}), lowest in {names[lo]} ({row[lo]:.3g})"
        )
        if metric == "four_fifths_ratio" and threshold is not None and row[hi] > 0:
            breaking += [
                f"{names[i]} ({row[i] / row[hi]:.2f})"
                for i in range(len(row))
                if row[i] / row[hi] < threshold
            ]
        elif kind == "selection" or metric == "equalized_odds_difference":
            breaking.append(
                names[lo] if metric.endswith("ratio") else f"{names[hi]} vs {names[lo]}"
            )
    return "; ".join(parts), breaking


def undefined_groups(rates: GroupRates, names: list[str]) -> list[str]:
    bad = set()
    for values in rates.rates.values():
        bad |= {names[i] for i in np.flatnonzero(np.isnan(values[0]))}
    return sorted(bad)
