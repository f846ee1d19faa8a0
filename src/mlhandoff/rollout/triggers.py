"""Rollback triggers over the prediction log, evaluated as Prometheus evaluates alert rules:
once a minute, each over its window, firing when the condition held for its ``for:``.

Per-minute aggregates per arm (counts, sums, latency histograms) are summed over each window
with cumulative sums, so a day of logs costs a few array passes, not one pass per minute.
Latency quantiles come from log-spaced buckets (about 5 % wide), interpolated within a bucket
as ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from mlhandoff.rollout.observations import Observations
from mlhandoff.spec.durations import parse_duration
from mlhandoff.spec.models import Trigger
from mlhandoff.spec.rollout_rules import parse_rollout_metric

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_EDGES = np.logspace(-2, 6, 401)  # latency buckets, ms


@dataclass
class TriggerResult:
    name: str
    rule: str
    fired: bool
    #: When it fired first (ISO 8601, UTC), or None.
    at: str | None
    #: Its value then; when it did not fire, the value in the last window with enough data.
    value: float | None
    detail: str


def evaluate_trigger(trigger: Trigger, observations: Observations | str) -> TriggerResult:
    rule = trigger.describe()
    if isinstance(observations, str):
        return TriggerResult(trigger.name, rule, False, None, None, f"no data: {observations}")
    metric = parse_rollout_metric(trigger.metric)
    if len(observations.values) == 0:
        return TriggerResult(trigger.name, rule, False, None, None, "no data in the log")
    minute = np.floor(observations.seconds / 60.0).astype(np.int64)
    first = int(minute.min())
    minute -= first
    total = int(minute.max()) + 1
    window = max(1, math.ceil(parse_duration(trigger.window).total_seconds() / 60))
    held = parse_duration(trigger.for_).total_seconds() / 60
    needed = 1 if held <= 0 else math.floor(held) + 1
    values = {}
    counts = {}
    for arm in (True, False):
        mask = observations.candidate == arm
        value, count = _windows(
            minute[mask], observations.values[mask], total, window, metric.kind, metric.quantile
        )
        values[arm], counts[arm] = value, count
    value = values[True]
    valid = counts[True] >= trigger.min_samples
    if trigger.versus == "baseline":
        base = values[False]
        valid &= counts[False] >= trigger.min_samples
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(base > 0, value / base, np.where(value > 0, np.inf, np.nan))
        valid &= ~np.isnan(value)
    breach = valid & _OPS[trigger.comparison()](np.nan_to_num(value, nan=0.0), trigger.threshold)
    run = _run_lengths(breach)
    fired = np.flatnonzero(run >= needed)
    if len(fired):
        k = int(fired[0])
        at = datetime.fromtimestamp((first + k + 1) * 60, UTC).isoformat()
        return TriggerResult(
            trigger.name,
            rule,
            True,
            at,
            float(value[k]),
            f"fired at {at}: {_shown(value[k])} {trigger.comparison()} {trigger.threshold:g}",
        )
    last = np.flatnonzero(valid)
    latest = float(value[last[-1]]) if len(last) else None
    detail = (
        f"did not fire; last value {_shown(latest)}"
        if latest is not None
        else f"no window with {trigger.min_samples} candidate requests yet"
    )
    return TriggerResult(trigger.name, rule, False, None, latest, detail)


def _shown(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _windows(
    minute: np.ndarray, values: np.ndarray, total: int, window: int, kind: str, q: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """The value and count of the window ending at each minute."""
    count = _window_sum(np.bincount(minute, minlength=total).astype(np.float64), window)
    if kind != "quantile":
        sums = _window_sum(np.bincount(minute, weights=values, minlength=total), window)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(count > 0, sums / np.maximum(count, 1), np.nan), count
    buckets = np.clip(np.searchsorted(_EDGES, values, side="right") - 1, 0, len(_EDGES) - 2)
    nb = len(_EDGES) - 1
    hist = np.bincount(minute * nb + buckets, minlength=total * nb).reshape(total, nb)
    cum = np.cumsum(np.vstack([np.zeros((1, nb)), hist]), axis=0)
    ends = np.arange(1, total + 1)
    in_window = cum[ends] - cum[np.maximum(ends - window, 0)]
    return _histogram_quantile(in_window, q or 0.5), count


def _window_sum(per_minute: np.ndarray, window: int) -> np.ndarray:
    cum = np.concatenate([[0.0], np.cumsum(per_minute)])
    ends = np.arange(1, len(per_minute) + 1)
    return cum[ends] - cum[np.maximum(ends - window, 0)]


def _histogram_quantile(hist: np.ndarray, q: float) -> np.ndarray:
    """Per row of bucket counts, the q-quantile, log-interpolated within its bucket."""
    cum = np.cumsum(hist, axis=1)
    n = cum[:, -1]
    target = q * n
    index = np.minimum((cum < target[:, None]).sum(axis=1), hist.shape[1] - 1)
    rows = np.arange(len(hist))
    below = np.where(index > 0, cum[rows, np.maximum(index - 1, 0)], 0.0)
    inside = hist[rows, index]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(inside > 0, (target - below) / inside, 0.0)
    lo, hi = np.log(_EDGES[index]), np.log(_EDGES[index + 1])
    out = np.exp(lo + np.clip(share, 0, 1) * (hi - lo))
    return np.where(n > 0, out, np.nan)


def _run_lengths(flags: np.ndarray) -> np.ndarray:
    """At each position, how many consecutive True values end there."""
    out = np.zeros(len(flags), dtype=np.int64)
    run = 0
    for i, flag in enumerate(flags.tolist()):
        run = run + 1 if flag else 0
        out[i] = run
    return out
