"""The metrics a rollout is judged on, by name: what each measures per request, its direction,
and whether it needs delayed labels. No heavy imports: the spec loader uses it.

::

    error_rate           share of requests answered 5xx                (rate, lower is better)
    latency_p95          95th percentile of request latency (p50..p99.9) (quantile, lower)
    positive_rate        share of rows scored at or above model.threshold (rate, no direction:
                         a guardrail band, binary classification)
    accuracy             share of labelled rows predicted right           (rate, higher; labels)
    recall, precision    binary classification, from delayed labels       (rate, higher; labels)
    mae                  mean absolute error, regression                  (mean, lower; labels)
    mean(output.score)   mean of a logged column: output.<name> or input.<name> (mean, none)

The same names appear in ``rollout.graduate_when`` and ``rollback.triggers``; the judge computes
them from the prediction log, the rendered Argo analysis from the server's metrics.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlhandoff.spec.models import HandoffSpec

Kind = Literal["rate", "mean", "quantile"]


@dataclass(frozen=True)
class RolloutMetric:
    name: str
    kind: Kind
    #: None: neither direction is better (a change either way beyond tolerance fails).
    greater_is_better: bool | None
    needs_labels: bool = False
    #: A logged column (``output.score``) for mean(...).
    column: str | None = None
    #: The quantile (0.95) of a latency metric.
    quantile: float | None = None
    #: The tasks it applies to; None: every task.
    tasks: tuple[str, ...] | None = None


_FIXED = {
    "error_rate": RolloutMetric("error_rate", "rate", False),
    "positive_rate": RolloutMetric("positive_rate", "rate", None, tasks=("binary_classification",)),
    "accuracy": RolloutMetric(
        "accuracy",
        "rate",
        True,
        needs_labels=True,
        tasks=("binary_classification", "multiclass_classification"),
    ),
    "recall": RolloutMetric(
        "recall", "rate", True, needs_labels=True, tasks=("binary_classification",)
    ),
    "precision": RolloutMetric(
        "precision", "rate", True, needs_labels=True, tasks=("binary_classification",)
    ),
    "mae": RolloutMetric("mae", "mean", False, needs_labels=True, tasks=("regression",)),
}
_LATENCY = re.compile(r"^latency_p(\d{1,2}(?:\.\d+)?)$")
_MEAN = re.compile(r"^mean\(\s*((?:input|output)\.[^()\s]+)\s*\)$")
_EXAMPLES = [*_FIXED, "latency_p95", "mean(output.score)"]


class UnknownRolloutMetric(ValueError):
    pass


def parse_rollout_metric(name: str) -> RolloutMetric:
    """The metric ``name`` denotes; UnknownRolloutMetric naming the known ones otherwise."""
    text = name.strip()
    if text in _FIXED:
        return _FIXED[text]
    latency = _LATENCY.match(text)
    if latency:
        q = float(latency.group(1))
        if not 1 <= q < 100:
            raise UnknownRolloutMetric(f"'{name}': a latency percentile lies in [1, 100)")
        return RolloutMetric(text, "quantile", False, quantile=q / 100.0)
    mean = _MEAN.match(text)
    if mean:
        return RolloutMetric(text, "mean", None, column=mean.group(1))
    guess = difflib.get_close_matches(text, _EXAMPLES, n=1, cutoff=0.6)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    raise UnknownRolloutMetric(
        f"unknown rollout metric '{name}'{hint} (known: {', '.join(_FIXED)}, latency_p<NN>, "
        "mean(output.<name>) or mean(input.<name>))"
    )


Loc = tuple[str | int, ...]


def rollout_problems(spec: HandoffSpec) -> Iterator[tuple[Loc, str]]:
    """Rollout rules checked against the rest of the spec: the sticky key and every column a
    rule names exist, each metric fits the model's task, label metrics have a label column."""
    fields = spec.data_contract.fields
    outputs = spec.outputs().fields
    task = spec.model.task
    key = spec.rollout.sticky_key
    if key is not None and key not in fields:
        guess = difflib.get_close_matches(key, list(fields), n=1)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        yield (("rollout", "sticky_key"), f"'{key}' is not a field of data_contract{hint}")
    sources = {out.source or name for name, out in outputs.items()}
    rules: list[tuple[Loc, str]] = []
    for i, rule in enumerate(spec.rollout.graduate_when):
        rules.append((("rollout", "graduate_when", i, "metric"), rule.metric))
    for i, trigger in enumerate(spec.rollback.triggers):
        rules.append((("rollback", "triggers", i, "metric"), trigger.metric))
    for at, name in rules:
        metric = parse_rollout_metric(name)  # the models checked the name already
        if metric.tasks is not None and task not in metric.tasks:
            yield (at, f"{metric.name} applies to {' or '.join(metric.tasks)}, not {task}")
        if metric.needs_labels and not spec.data_contract.label:
            yield (at, f"{metric.name} needs delayed labels: set data_contract.label")
        if metric.column is not None:
            side, _, column = metric.column.partition(".")
            known = list(fields) if side == "input" else list(outputs)
            if column not in known:
                yield (at, f"'{column}' is not an {side} of this model (known: {', '.join(known)})")
        if metric.name == "positive_rate" and "score" not in sources:
            yield (at, "positive_rate counts scores at or above model.threshold: no score output")
