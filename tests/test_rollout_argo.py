"""The rollout rendered for Kubernetes (``docs/deploy/rollout.yaml``), checked offline: the YAML
parses, the steps are the spec's, every query names a metric the server exports, and the
conditions say what the rules say when evaluated on sample query results."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Histogram

import mlhandoff
from mlhandoff.serve.metrics import ServerMetrics
from mlhandoff.spec import load_spec

MANIFESTS = "docs/deploy/rollout.yaml"


@pytest.fixture(scope="module")
def documents(example_bundle: Path) -> dict[str, Any]:
    docs = list(yaml.safe_load_all((example_bundle / MANIFESTS).read_text()))
    return {d["metadata"]["name"]: d for d in docs}


def test_the_rollout_has_the_spec_steps(documents, example_bundle: Path) -> None:
    spec = load_spec(example_bundle / "handoff.yaml")
    rollout = documents["risky-transactions"]
    assert rollout["kind"] == "Rollout" and rollout["apiVersion"] == "argoproj.io/v1alpha1"
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [5, 25, 100]
    assert [s["pause"]["duration"] for s in steps if "pause" in s] == ["24h", "48h"]
    assert len(spec.rollout.steps) == 3
    analyses = [s["analysis"] for s in steps if "analysis" in s]
    assert len(analyses) == 2
    for analysis in [*analyses, rollout["spec"]["strategy"]["canary"]["analysis"]]:
        (template,) = analysis["templates"]
        assert documents[template["templateName"]]["kind"] == "AnalysisTemplate"
        assert {a["name"]: a["value"] for a in analysis["args"]} == {
            "candidate-version": "1.0.0",
            "baseline-version": "0.9.0",
        }
    graduation = documents["risky-transactions-graduation"]
    assert [m["name"] for m in graduation["spec"]["metrics"]] == [
        "error-rate",
        "latency-p95",
        "positive-rate",
    ]
    assert "recall" in graduation["metadata"]["annotations"]["mlhandoff/not-rendered"]
    triggers = documents["risky-transactions-rollback"]["spec"]["metrics"]
    assert [(m["name"], m["failureLimit"]) for m in triggers] == [
        ("5xx-ratio", 10),  # for: 10m at one look a minute
        ("step-up-rate-doubles", 0),
    ]


def _exported() -> dict[str, set[str]]:
    """Every series name the server exports, with its label names."""
    out: dict[str, set[str]] = {}
    for collector in vars(ServerMetrics()).values():
        if isinstance(collector, Counter | Histogram):
            name = collector._name
            labels = set(collector._labelnames)
            if isinstance(collector, Counter):
                out[f"{name}_total"] = labels
            else:
                for suffix in ("_bucket", "_count", "_sum"):
                    out[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def test_every_query_reads_metrics_the_server_exports(documents) -> None:
    exported = _exported()
    queries = [
        m["provider"]["prometheus"]["query"]
        for d in documents.values()
        if d["kind"] == "AnalysisTemplate"
        for m in d["spec"]["metrics"]
    ]
    assert len(queries) == 5
    for query in queries:
        assert query.count("(") == query.count(")"), query
        for name, selector in re.findall(r"(mlhandoff_\w+)\{([^}]*)\}", query):
            assert name in exported, name
            labels = {pair.split("=")[0].rstrip("!~") for pair in selector.split(",")}
            assert labels <= exported[name], (name, labels)
        assert re.findall(r"mlhandoff_\w+(?!\{|\w)", query) == []  # every series is selected


def _evaluate(condition: str, result: list[float]) -> bool:
    """The Argo expression subset the manifests use, evaluated in Python."""
    assert re.fullmatch(r"[\w\[\]\s().<>=!&|+-]+", condition), condition
    expression = (
        condition.replace("&&", " and ")
        .replace("||", " or ")
        .replace("!(", " not (")
        .replace("!isNaN", " not isNaN")
    )
    namespace = {"result": result, "len": len, "isNaN": math.isnan, "__builtins__": {}}
    return bool(eval(expression, namespace))


@pytest.mark.parametrize(
    ("template", "metric", "result", "outcome"),
    [
        ("graduation", "error-rate", [0.001], "success"),  # within +0.002 of the baseline
        ("graduation", "error-rate", [0.0025], "failure"),
        ("graduation", "error-rate", [-0.01], "success"),  # fewer errors: fine
        ("graduation", "latency-p95", [1.4], "success"),
        ("graduation", "latency-p95", [2.0], "failure"),  # twice as slow
        ("graduation", "positive-rate", [1.1], "success"),
        ("graduation", "positive-rate", [1.3], "failure"),  # a band: both ways
        ("graduation", "positive-rate", [0.7], "failure"),
        ("graduation", "error-rate", [], "inconclusive"),  # too few requests: no answer
        ("graduation", "latency-p95", [math.nan], "inconclusive"),
        ("rollback", "5xx-ratio", [0.02], "failure"),
        ("rollback", "5xx-ratio", [0.005], "success"),
        ("rollback", "5xx-ratio", [], "success"),
        ("rollback", "step-up-rate-doubles", [2.5], "failure"),
        ("rollback", "step-up-rate-doubles", [1.5], "success"),
    ],
)
def test_conditions_say_what_the_rules_say(
    documents, template: str, metric: str, result: list[float], outcome: str
) -> None:
    (found,) = [
        m
        for m in documents[f"risky-transactions-{template}"]["spec"]["metrics"]
        if m["name"] == metric
    ]
    success = _evaluate(found["successCondition"], result)
    failure = _evaluate(found["failureCondition"], result)
    assert not (success and failure)
    got = "success" if success else "failure" if failure else "inconclusive"
    assert got == outcome


def test_verify_rechecks_the_manifests(example_bundle: Path) -> None:
    report = mlhandoff.verify(example_bundle)
    by_id = {r.id: r for r in report.results}
    assert by_id["rollout_manifests"].status == "pass"
    assert by_id["rollout_rules"].status == "pass"
    assert "4 rule(s) (2 critical), 2 trigger(s)" in by_id["rollout_rules"].detail
    readme = (example_bundle / "docs" / "README.md").read_text()
    assert "- latency_p95 at most 1.5x the baseline's (critical)" in readme
    assert "mlhandoff rollout judge risky-transactions-1.0.0" in readme
