"""Metric names as written in ``handoff.yaml``: one grammar for the spec loader and evaluator.

Names are plain (``roc_auc``, ``rmse``) or carry one parameter after ``@``: a cut-off for
ranking (``ndcg@10``), ``k`` for top-k accuracy (``top_k_accuracy@3``), or a bound on the other
side of a precision/recall trade-off (``recall@precision0.9``). This module imports nothing
heavy so the spec loader can check names without loading numpy code.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

BINARY, MULTICLASS, REGRESSION, RANKING = (
    "binary_classification",
    "multiclass_classification",
    "regression",
    "ranking",
)

#: base name -> (tasks, greater_is_better)
_PLAIN: dict[str, tuple[tuple[str, ...], bool]] = {
    "roc_auc": ((BINARY,), True),
    "pr_auc": ((BINARY,), True),
    "log_loss": ((BINARY,), False),
    "brier": ((BINARY,), False),
    "ece": ((BINARY,), False),
    "accuracy": ((BINARY, MULTICLASS), True),
    "precision": ((BINARY,), True),
    "recall": ((BINARY,), True),
    "f1": ((BINARY,), True),
    "selection_rate": ((BINARY,), True),
    "false_positive_rate": ((BINARY,), False),
    "f1_macro": ((MULTICLASS,), True),
    "f1_micro": ((MULTICLASS,), True),
    "rmse": ((REGRESSION,), False),
    "mae": ((REGRESSION,), False),
    "mape": ((REGRESSION,), False),
    "r2": ((REGRESSION,), True),
    "mrr": ((RANKING,), True),
}
_ALIASES = {
    "auc": "roc_auc",
    "average_precision": "pr_auc",
    "brier_score": "brier",
    "expected_calibration_error": "ece",
    "true_positive_rate": "recall",
    "tpr": "recall",
    "fpr": "false_positive_rate",
    "macro_f1": "f1_macro",
    "micro_f1": "f1_micro",
}
#: base name -> (tasks, greater_is_better, parameter kind): "k" (int >= 1) or "p" (0 < p <= 1)
_PARAM: dict[str, tuple[tuple[str, ...], bool, str]] = {
    "recall@precision": ((BINARY,), True, "p"),
    "precision@recall": ((BINARY,), True, "p"),
    "top_k_accuracy@": ((MULTICLASS,), True, "k"),
    "ndcg@": ((RANKING,), True, "k"),
    "map@": ((RANKING,), True, "k"),
    "recall@": ((RANKING,), True, "k"),
}
#: Fairness metrics: binary classification guardrails computed across the slices of ``by``.
FAIRNESS: dict[str, bool] = {
    "demographic_parity_difference": False,
    "demographic_parity_ratio": True,
    "equalized_odds_difference": False,
    "four_fifths_ratio": True,
}
#: A default bound for fairness metrics that have a conventional one.
DEFAULT_THRESHOLDS = {"four_fifths_ratio": 0.8}

_EXAMPLES = [
    *_PLAIN,
    *_ALIASES,
    *FAIRNESS,
    "recall@precision0.9",
    "precision@recall0.8",
    "top_k_accuracy@3",
    "ndcg@10",
    "map@10",
    "recall@10",
]
_PARAMETRIC = re.compile(
    r"^(recall@precision|precision@recall|top_k_accuracy@|ndcg@|map@|recall@)(.+)$"
)


@dataclass(frozen=True)
class MetricRef:
    """A parsed metric name: what to compute, and which way is better."""

    name: str  # canonical spelling, e.g. "roc_auc", "ndcg@10"
    base: str  # "roc_auc", "recall@precision", "ndcg@", "demographic_parity_difference" ...
    param: float | None
    tasks: tuple[str, ...]
    greater_is_better: bool
    fairness: bool = False


class UnknownMetric(ValueError):
    """A metric name the grammar does not know, or one that does not fit the task."""


def suggestions(name: str) -> list[str]:
    return difflib.get_close_matches(name.strip().lower(), _EXAMPLES, n=3, cutoff=0.5)


def parse_metric(name: str, task: str | None = None) -> MetricRef:
    """Parse ``name``; ``task`` (when given) must be one the metric applies to."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    ref = _parse(key)
    if ref is None:
        guess = suggestions(name)
        hint = f"; did you mean {' or '.join(repr(g) for g in guess)}?" if guess else ""
        raise UnknownMetric(f"unknown metric '{name}'{hint}")
    if task is not None and task not in ref.tasks:
        fitting = sorted(n for n in _EXAMPLES if task in _tasks_of(n))
        raise UnknownMetric(
            f"'{name}' does not apply to {task}; metrics for it: {', '.join(fitting)}"
        )
    return ref


def _tasks_of(name: str) -> tuple[str, ...]:
    ref = _parse(_ALIASES.get(name, name))
    return ref.tasks if ref else ()


def _parse(key: str) -> MetricRef | None:
    if key in _PLAIN:
        tasks, better = _PLAIN[key]
        return MetricRef(key, key, None, tasks, better)
    if key in FAIRNESS:
        return MetricRef(key, key, None, (BINARY,), FAIRNESS[key], fairness=True)
    match = _PARAMETRIC.match(key)
    if not match:
        return None
    base, raw = match.groups()
    tasks, better, kind = _PARAM[base]
    try:
        value = float(raw)
    except ValueError:
        return None
    if kind == "k":
        if not value.is_integer() or value < 1:
            return None
        return MetricRef(f"{base}{int(value)}", base, int(value), tasks, better)
    if not 0 < value <= 1:
        return None
    return MetricRef(f"{base}{value:g}", base, value, tasks, better)
