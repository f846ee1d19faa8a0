"""The structured rollout spec: steps, graduation rules, rollback triggers, validated at load
with ``file:line:col`` errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlhandoff.errors import SpecError
from mlhandoff.spec import dump_spec, load_spec, parse_spec
from mlhandoff.spec.durations import format_duration, parse_duration
from mlhandoff.spec.rollout_rules import UnknownRolloutMetric, parse_rollout_metric

EXAMPLE_SPEC = (
    Path(__file__).resolve().parents[1] / "examples" / "risky_transactions" / "handoff.yaml"
)

BASE = """\
name: demo
version: "1.1"
model:
  path: model.skops
  task: binary_classification
  version_tag: v1
data_contract:
  label: y
  fields:
    customer_id: {type: string, id: true}
    amount: {type: float, min: 0, max: 10}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(BASE + text, file=Path("handoff.yaml"))
    return [str(issue) for issue in info.value.issues]


def test_example_rules_are_structured() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    rules = {r.metric: r for r in spec.rollout.graduate_when}
    assert set(rules) == {"error_rate", "latency_p95", "positive_rate", "recall"}
    assert rules["latency_p95"].critical and rules["latency_p95"].relative_tolerance == 0.5
    assert rules["positive_rate"].direction() is None  # a band: either way counts
    assert rules["recall"].goal == "better" and rules["recall"].direction() is True
    assert spec.rollout.sticky_key == "transaction_id"
    assert [s.traffic_percent for s in spec.rollout.steps] == [5, 25, 100]
    (errors, doubling) = spec.rollback.triggers
    assert errors.for_ == "10m" and errors.comparison() == ">"
    assert doubling.versus == "baseline" and doubling.describe() == (
        "positive_rate / baseline > 2 over 1h"
    )
    assert parse_spec(dump_spec(spec)) == spec  # `for` survives the frozen copy


def test_free_text_rules_are_refused_with_the_new_form() -> None:
    problems = _problems(
        "rollout:\n  graduate_when:\n    - no page alert during the step\n"
        "rollback:\n  triggers:\n    - 5xx above 1%\n"
    )
    assert problems[0].startswith("handoff.yaml:14:7: rollout.graduate_when[0]:")
    assert "free text is no longer read" in problems[0] and "{metric: error_rate" in problems[0]
    assert problems[1].startswith("handoff.yaml:17:7: rollback.triggers[0]:")
    assert "threshold: 0.01, window: 10m" in problems[1]


def test_durations_are_parsed_at_load() -> None:
    (problem,) = _problems("rollout:\n  steps:\n    - {traffic_percent: 5, duration: 3 days}\n")
    assert problem.startswith("handoff.yaml:14:38: rollout.steps[0].duration:")
    assert "not a duration: '3 days'" in problem and "1h30m" in problem
    (problem,) = _problems(
        "rollback:\n  triggers:\n    - {name: e, metric: error_rate, threshold: 0.1, for: 10x}\n"
    )
    assert "rollback.triggers[0].for" in problem and "'10x'" in problem


def test_sticky_key_and_columns_must_exist() -> None:
    problems = _problems(
        "rollout:\n  sticky_key: customer\n  graduate_when:\n"
        "    - {metric: mean(output.margin), tolerance: 1}\n"
        "    - {metric: mean(input.amount), tolerance: 1}\n"
    )
    assert len(problems) == 2
    assert problems[0].startswith("handoff.yaml:13:15: rollout.sticky_key:")
    assert "did you mean 'customer_id'?" in problems[0]
    assert problems[1].startswith("handoff.yaml:15:16: rollout.graduate_when[0].metric:")
    assert "'margin' is not an output" in problems[1] and "score, label" in problems[1]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{metric: latency_p95, tolerance: 5}", "use relative_tolerance"),
        ("{metric: recall, goal: better}", "names mde"),
        ("{metric: mean(output.score), goal: better, mde: 0.1}", "set greater_is_better"),
        ("{metric: error_rate}", "needs tolerance"),
        ("{metric: error_rate, tolerance: 0.1, greater_is_better: true}", "contradicts"),
        ("{metric: error_rat, tolerance: 0.1}", "did you mean 'error_rate'?"),
        ("{metric: latency_p0.5, relative_tolerance: 0.1}", "lies in [1, 100)"),
        ("{metric: mae, tolerance: 0.1}", "applies to regression, not binary_classification"),
    ],
)
def test_rules_must_be_complete(rule: str, message: str) -> None:
    (problem,) = _problems(f"rollout:\n  graduate_when:\n    - {rule}\n")
    assert problem.startswith("handoff.yaml:14:"), problem
    assert "rollout.graduate_when[0]" in problem
    assert message in problem


def test_steps_and_scores_are_ordered() -> None:
    (problem,) = _problems(
        "rollout:\n  steps:\n    - {traffic_percent: 50, duration: 1d}\n"
        "    - {traffic_percent: 10, duration: 1d}\n"
    )
    assert "must not decrease (got [50.0, 10.0])" in problem
    (problem,) = _problems("rollout:\n  pass_score: 50\n  marginal_score: 80\n")
    assert "marginal_score (80) exceeds pass_score (50)" in problem
    (problem,) = _problems("rollout:\n  steps:\n    - {traffic_percent: 101, duration: 1d}\n")
    assert "rollout.steps[0].traffic_percent" in problem


def test_trigger_without_a_worse_direction_names_its_op() -> None:
    (problem,) = _problems(
        "rollback:\n  triggers:\n    - {name: band, metric: positive_rate, threshold: 0.1}\n"
    )
    assert "handoff.yaml:14:7: rollback.triggers[0]" in problem and "set op" in problem


def test_label_metrics_need_a_label() -> None:
    text = BASE.replace("  label: y\n", "") + (
        "rollout:\n  graduate_when:\n    - {metric: recall, goal: better, mde: 0.1}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, file=Path("handoff.yaml"))
    assert "recall needs delayed labels: set data_contract.label" in str(info.value)


def test_metric_names() -> None:
    assert parse_rollout_metric("latency_p99.9").quantile == pytest.approx(0.999)
    assert parse_rollout_metric("mean( output.score )").column == "output.score"
    assert parse_rollout_metric("recall").needs_labels
    with pytest.raises(UnknownRolloutMetric, match="known: error_rate"):
        parse_rollout_metric("throughput")


@given(st.integers(min_value=0, max_value=10**12))
def test_durations_round_trip(ms: int) -> None:
    delta = timedelta(milliseconds=ms)
    assert parse_duration(format_duration(delta)) == delta


@given(st.text(max_size=12))
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    try:
        parse_duration(text)
    except ValueError as exc:
        assert "duration" in str(exc) or "largest first" in str(exc)


def test_duration_grammar() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1w2d") == timedelta(days=9)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    for bad in ("30m1h", "1h1h", "1.5h", "", "10", "-1m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
