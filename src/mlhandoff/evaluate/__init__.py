"""Acceptance: metrics with paired bootstrap intervals, baselines, guardrails, latency, verdicts.

::

    report = evaluate_bundle("dist/risky-transactions-1.0.0", "test.parquet", baseline="dist/old")
    report.ok           # no failed primary criterion, guardrail or latency budget
    report.to_dict()    # the JSON that ``mlhandoff evaluate --json`` prints
"""

from mlhandoff.evaluate.acceptance import evaluate_sets
from mlhandoff.evaluate.bootstrap import Interval
from mlhandoff.evaluate.data import EvalSet, Outputs, build_eval_set, model_outputs
from mlhandoff.evaluate.diff import DiffReport, diff_bundles
from mlhandoff.evaluate.junit import junit_xml
from mlhandoff.evaluate.report import AcceptanceReport, ResultRow, SliceResult
from mlhandoff.evaluate.run import evaluate_bundle, recorded_report
from mlhandoff.spec.metric_names import MetricRef, UnknownMetric, parse_metric

__all__ = [
    "AcceptanceReport",
    "DiffReport",
    "EvalSet",
    "Interval",
    "MetricRef",
    "Outputs",
    "ResultRow",
    "SliceResult",
    "UnknownMetric",
    "build_eval_set",
    "diff_bundles",
    "evaluate_bundle",
    "evaluate_sets",
    "junit_xml",
    "model_outputs",
    "parse_metric",
    "recorded_report",
]
