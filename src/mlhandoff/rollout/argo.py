"""The spec's rollout as Argo Rollouts manifests: a ``Rollout`` whose canary steps are the spec's
steps, and two ``AnalysisTemplate`` objects whose Prometheus queries read the server's own
metrics (split by the ``version`` label the server puts on them):

* ``<name>-graduation`` runs at the end of each step: one metric per graduation rule the metrics
  can express (rates and latency from ``mlhandoff_requests`` / ``mlhandoff_request_latency_seconds``
  / ``mlhandoff_prediction_value``), succeeding while the candidate stays within the rule's
  tolerance of the baseline;
* ``<name>-rollback`` runs in the background for the whole rollout: one metric per trigger,
  failing (Argo aborts the rollout: traffic back to the stable version) once the trigger held
  for its ``for:``.

Rules the metrics cannot express (label metrics, inputs) are listed in an annotation: the
statistical graduation stays with ``mlhandoff rollout judge`` on the prediction log, which a
pipeline can run at each pause. Conditions use a small subset of Argo's expression language:
``len(result) == 0``, ``isNaN(result[0])``, ``result[0] <op> <number>``, ``&&``, ``||``.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from mlhandoff.spec.durations import parse_duration
from mlhandoff.spec.models import GraduationRule, HandoffSpec, Trigger
from mlhandoff.spec.rollout_rules import RolloutMetric, parse_rollout_metric

#: The prediction-value histogram's bucket edges (serve/metrics.py): a positive rate at
#: model.threshold can be read from Prometheus only when the threshold is one of them.
VALUE_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
PROMETHEUS = "http://prometheus.monitoring:9090"
CANDIDATE = "{{args.candidate-version}}"
BASELINE = "{{args.baseline-version}}"
#: Graduation metrics are measured over this window and may miss this many times per step.
RULE_WINDOW = "30m"
RULE_FAILURE_LIMIT = 2


def render_manifests(spec: HandoffSpec) -> str:
    """The YAML documents of ``docs/deploy/rollout.yaml`` (Rollout, then the templates)."""
    docs = [_rollout(spec), _graduation(spec), _triggers(spec)]
    header = (
        f"# Argo Rollouts manifests for {spec.name} {spec.version}, rendered by mlhandoff from "
        "handoff.yaml (rollout, rollback).\n# Set the image and the Prometheus address; the "
        "server labels its metrics with version=<spec version>.\n"
    )
    return header + yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, width=100)


class _Dumper(yaml.SafeDumper):
    """Writes repeated values out in full: manifests are read by people, not only parsers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def baseline_version(spec: HandoffSpec) -> str:
    previous = spec.rollback.previous_version or "TODO-previous-version"
    return previous.removeprefix(f"{spec.name}-")


def _args(spec: HandoffSpec) -> list[dict[str, str]]:
    return [
        {"name": "candidate-version", "value": spec.version},
        {"name": "baseline-version", "value": baseline_version(spec)},
    ]


def _rollout(spec: HandoffSpec) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    graduation = {"templates": [{"templateName": f"{spec.name}-graduation"}], "args": _args(spec)}
    for step in spec.rollout.steps:
        steps.append({"setWeight": _weight(step.traffic_percent)})
        if step.traffic_percent >= 100:
            break
        steps.append({"pause": {"duration": _go_duration(step.duration)}})
        steps.append({"analysis": graduation})
    labels = {"app": spec.name}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "version": spec.version}},
                "spec": {
                    "containers": [
                        {
                            "name": "model",
                            "image": f"{spec.name}:{spec.version}",
                            "args": ["serve", "/bundle", "--host", "0.0.0.0", "--port", "8080"],
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "readinessProbe": {"httpGet": {"path": "/health/ready", "port": 8080}},
                        }
                    ]
                },
            },
            "strategy": {
                "canary": {
                    "analysis": {
                        "templates": [{"templateName": f"{spec.name}-rollback"}],
                        "args": _args(spec),
                    },
                    "steps": steps,
                }
            },
        },
    }


def _weight(percent: float) -> int | float:
    return int(percent) if float(percent).is_integer() else percent


def _go_duration(text: str) -> str:
    """A duration as Argo reads it (s, m, h)."""
    seconds = int(parse_duration(text).total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{max(seconds, 1)}s"


def _graduation(spec: HandoffSpec) -> dict[str, Any]:
    metrics, skipped = [], []
    for rule in spec.rollout.graduate_when:
        metric = _rule_metric(spec, rule)
        if metric is None:
            skipped.append(rule.metric)
        else:
            metrics.append(metric)
    return _template(
        spec,
        f"{spec.name}-graduation",
        metrics,
        "judged by `mlhandoff rollout judge` only: " + ", ".join(skipped) if skipped else "",
    )


def _triggers(spec: HandoffSpec) -> dict[str, Any]:
    metrics, skipped = [], []
    for trigger in spec.rollback.triggers:
        metric = _trigger_metric(spec, trigger)
        if metric is None:
            skipped.append(trigger.name)
        else:
            metrics.append(metric)
    return _template(
        spec,
        f"{spec.name}-rollback",
        metrics,
        "judged by `mlhandoff rollout judge` only: " + ", ".join(skipped) if skipped else "",
    )


def _template(spec: HandoffSpec, name: str, metrics: list[Any], note: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app": spec.name}}
    if note:
        metadata["annotations"] = {"mlhandoff/not-rendered": note}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": metadata,
        "spec": {
            "args": [{"name": "candidate-version"}, {"name": "baseline-version"}],
            "metrics": metrics,
        },
    }


def value_query(spec: HandoffSpec, metric: RolloutMetric, version: str, window: str) -> str | None:
    """PromQL for one version's value of ``metric`` over ``window``, or None if the server's
    metrics cannot give it."""
    v = f'version="{version}"'
    if metric.name == "error_rate":
        return (
            f'sum(rate(mlhandoff_requests_total{{{v},status=~"5.."}}[{window}])) / '
            f"sum(rate(mlhandoff_requests_total{{{v}}}[{window}]))"
        )
    if metric.kind == "quantile":
        return (
            f"histogram_quantile({metric.quantile:g}, sum by (le) "
            f"(rate(mlhandoff_request_latency_seconds_bucket{{{v}}}[{window}])))"
        )
    output = _score_output(spec)
    if metric.name == "positive_rate" and output and spec.model.threshold in VALUE_BUCKETS:
        edge = f"{spec.model.threshold:g}"
        return (
            f'1 - sum(rate(mlhandoff_prediction_value_bucket{{{v},output="{output}",le="{edge}"}}'
            f"[{window}])) / sum(rate(mlhandoff_prediction_value_count{{{v},"
            f'output="{output}"}}[{window}]))'
        )
    if metric.column is not None and metric.column.startswith("output."):
        name = metric.column.removeprefix("output.")
        out = spec.outputs().fields.get(name)
        if out is not None and out.type == "float":
            return (
                f'sum(rate(mlhandoff_prediction_value_sum{{{v},output="{name}"}}[{window}])) / '
                f'sum(rate(mlhandoff_prediction_value_count{{{v},output="{name}"}}[{window}]))'
            )
    return None


def _score_output(spec: HandoffSpec) -> str | None:
    for name, out in spec.outputs().fields.items():
        if (out.source or name) == "score":
            return name
    return None


def _enough(window: str, count: int) -> str:
    return f'sum(increase(mlhandoff_requests_total{{version="{CANDIDATE}"}}[{window}])) >= {count}'


def _rule_metric(spec: HandoffSpec, rule: GraduationRule) -> dict[str, Any] | None:
    """A graduation rule as an analysis metric: the candidate's value against the baseline's."""
    metric = parse_rollout_metric(rule.metric)
    if rule.goal == "better" or metric.needs_labels:
        return None
    cand = value_query(spec, metric, CANDIDATE, RULE_WINDOW)
    base = value_query(spec, metric, BASELINE, RULE_WINDOW)
    if cand is None or base is None:
        return None
    direction = rule.direction()
    if metric.kind == "quantile" or rule.tolerance is None:
        query = f"({cand}) / ({base})"  # a ratio: latency, or a relative tolerance
        limit = 1 + (rule.relative_tolerance or 0.0)
        low, high = (
            (1 / limit if metric.kind == "quantile" else 1 - (rule.relative_tolerance or 0.0)),
            limit,
        )
    else:
        query = f"({cand}) - ({base})"
        low, high = -rule.tolerance, rule.tolerance
    if direction is False:
        ok = f"result[0] <= {_num(high)}"
    elif direction is True:
        ok = f"result[0] >= {_num(low)}"
    else:
        ok = f"result[0] >= {_num(low)} && result[0] <= {_num(high)}"
    return {
        "name": _name(rule.metric),
        "interval": "10m",
        "count": 3,
        "failureLimit": RULE_FAILURE_LIMIT,
        "successCondition": f"len(result) > 0 && !isNaN(result[0]) && {ok}",
        "failureCondition": f"len(result) > 0 && !isNaN(result[0]) && !({ok})",
        "provider": {
            "prometheus": {
                "address": PROMETHEUS,
                "query": f"({query}) and on() {_enough(RULE_WINDOW, 100)}",
            }
        },
    }


def _trigger_metric(spec: HandoffSpec, trigger: Trigger) -> dict[str, Any] | None:
    """A trigger as a background metric: a breach is a failure; the analysis fails (and Argo
    rolls back) after as many breaches, one a minute, as its ``for:`` lasts."""
    metric = parse_rollout_metric(trigger.metric)
    if metric.needs_labels:
        return None
    window = _go_duration(trigger.window)
    cand = value_query(spec, metric, CANDIDATE, window)
    if cand is None:
        return None
    query = cand
    if trigger.versus == "baseline":
        base = value_query(spec, metric, BASELINE, window)
        if base is None:
            return None
        query = f"({cand}) / ({base})"
    breach = f"result[0] {trigger.comparison()} {_num(trigger.threshold)}"
    held = parse_duration(trigger.for_).total_seconds()
    return {
        "name": _name(trigger.name),
        "interval": "1m",
        "failureLimit": math.floor(held / 60),
        "successCondition": f"len(result) == 0 || isNaN(result[0]) || !({breach})",
        "failureCondition": f"len(result) > 0 && !isNaN(result[0]) && {breach}",
        "provider": {
            "prometheus": {
                "address": PROMETHEUS,
                "query": f"({query}) and on() {_enough(window, trigger.min_samples)}",
            }
        },
    }


def _num(value: float) -> str:
    return f"{value:.10g}"


def _name(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
    while "--" in out:
        out = out.replace("--", "-")
    return out or "rule"
