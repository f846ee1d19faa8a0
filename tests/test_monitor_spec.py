"""The monitoring section is rules a program evaluates: durations, fields, statistics, alerts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mlhandoff.errors import SpecError
from mlhandoff.spec import dump_spec, load_spec, parse_spec
from mlhandoff.spec.durations import UNITS, duration_seconds, format_duration
from mlhandoff.spec.models import HandoffSpec
from mlhandoff.spec.monitoring import (
    LATENCY_BUCKETS_MS,
    STATISTICS,
    breached,
    field_kind,
    monitoring_issues,
    threshold_of,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SPEC = ROOT / "examples" / "risky_transactions" / "handoff.yaml"

BASE = """\
name: demo
version: "1.0"
model:
  path: model.skops
  task: binary_classification
  version_tag: v1
api:
  latency_budget: {p95_ms: 25}
data_contract:
  label: y
  fields:
    amount: {type: float, min: 0, max: 10}
    country: {type: category, domain: [DE, FR]}
    seen_at: {type: timestamp, timezone: UTC}
monitoring:
"""


def _spec(monitoring: str) -> HandoffSpec:
    return parse_spec(BASE + monitoring, file=Path("handoff.yaml"))


def _issues(monitoring: str) -> dict[tuple[str | int, ...], str]:
    """The monitoring problems of a spec that parses (without the loader's other checks)."""
    spec = HandoffSpec.model_validate(yaml.safe_load(BASE + monitoring))
    return dict(monitoring_issues(spec))


def _error(monitoring: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        _spec(monitoring)
    return info.value


ALERT = "  alerts:\n    - {name: Drift, severity: ticket, route: '#ml'}\n"


def test_example_monitoring_is_rules_that_check_clean() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    m = spec.monitoring
    assert list(monitoring_issues(spec)) == []
    amount = next(r for r in m.drift if r.field == "amount_eur")
    assert (amount.statistic, amount.threshold, amount.window, amount.for_) == (
        "psi",
        0.2,
        "1d",
        "1h",
    )
    band = next(r for r in m.outputs if r.statistic == "positive_rate")
    assert (band.min, band.max, band.window) == (0.001, 0.03, "6h")
    errors = next(r for r in m.service if r.metric == "error_rate")
    assert (errors.threshold, errors.for_) == (0.01, "10m")
    assert {a.name for a in m.alerts} == {r.alert for r in [*m.rules(), *m.slos]}
    assert all(a.runbook for a in m.alerts)


def test_old_free_text_condition_is_an_error_showing_the_new_form() -> None:
    err = _error(
        "  alerts:\n    - {name: Drift, condition: 'psi(amount) > 0.2 over 1d', severity: ticket}\n"
    )
    (issue,) = err.issues
    assert issue.path == "monitoring.alerts[0].condition"
    assert (issue.line, issue.column) == (17, 32)
    assert "free-text conditions are not evaluated" in issue.message
    assert "{field: amount, statistic: psi, threshold: 0.2, window: 1d" in issue.message


def test_unrecognised_old_condition_still_shows_a_rule() -> None:
    err = _error("  alerts:\n    - {name: Errors, condition: '5xx ratio > 1% for 10m'}\n")
    assert "monitoring.drift: - {field: amount_eur, statistic: psi" in err.issues[0].message


@pytest.mark.parametrize("text", ["5 min", "1.5h", "10", "1y", "-1m", "1m1h", "250ms", ""])
def test_a_duration_that_does_not_parse_is_located(text: str) -> None:
    err = _error(f"  drift:\n    - {{field: amount, window: '{text}', alert: Drift}}\n{ALERT}")
    (issue,) = err.issues
    assert issue.path == "monitoring.drift[0].window"
    assert issue.line == 17
    assert any(
        words in issue.message for words in ("not a duration", "largest first", "whole seconds")
    )


def test_for_is_spelt_for_and_survives_the_frozen_spec() -> None:
    spec = _spec(f"  drift:\n    - {{field: amount, for: 2h, alert: Drift}}\n{ALERT}")
    assert spec.monitoring.drift[0].for_ == "2h"
    frozen = dump_spec(spec)
    assert "for: 2h" in frozen and "for_" not in frozen
    assert parse_spec(frozen).monitoring.drift[0].for_ == "2h"


def test_alert_names_are_prometheus_names() -> None:
    err = _error("  alerts:\n    - {name: input drift}\n")
    assert err.issues[0].path == "monitoring.alerts[0].name"
    assert "cannot name a Prometheus alert" in err.issues[0].message


def test_unknown_field_is_reported_with_a_suggestion() -> None:
    rule = f"  drift:\n    - {{field: amout, alert: Drift}}\n{ALERT}"
    message = "'amout' is not in data_contract; did you mean 'amount'?"
    assert _issues(rule) == {("monitoring", "drift", 0, "field"): message}
    (issue,) = _error(rule).issues  # the loader's own check of drift fields, located
    assert (issue.path, issue.line) == ("monitoring.drift[0].field", 17)
    assert "did you mean 'amount'" in issue.message


@pytest.mark.parametrize(
    ("field", "statistic"),
    [("country", "ks"), ("country", "wasserstein"), ("amount", "unseen_rate"), ("seen_at", "psi")],
)
def test_a_statistic_that_does_not_fit_the_type_is_reported(field: str, statistic: str) -> None:
    issues = _issues(
        f"  drift:\n    - {{field: {field}, statistic: {statistic}, alert: Drift}}\n{ALERT}"
    )
    message = issues[("monitoring", "drift", 0, "statistic")]
    assert f"{statistic} does not fit '{field}'" in message
    assert "use one of" in message


def test_every_fitting_statistic_is_accepted() -> None:
    kinds = {"amount": "numeric", "country": "categorical", "seen_at": "other"}
    rules = [
        f"    - {{field: {f}, statistic: {s}, alert: Drift}}\n"
        for f, kind in kinds.items()
        for s, info in STATISTICS.items()
        if kind in info.kinds
    ]
    assert len(rules) == 7 + 6 + 1
    assert _issues("  drift:\n" + "".join(rules) + ALERT) == {}


def test_alerts_and_rules_must_meet() -> None:
    issues = _issues(
        "  drift:\n    - {field: amount, alert: Drfit}\n"
        "  alerts:\n    - {name: Drift}\n    - {name: Drift}\n"
    )
    assert issues[("monitoring", "drift", 0, "alert")] == (
        "'Drfit' is not in monitoring.alerts; did you mean 'Drift'?"
    )
    assert issues[("monitoring", "alerts", 1, "name")] == "alert 'Drift' is defined twice"
    assert "no rule raises alert 'Drift'" in issues[("monitoring", "alerts", 0, "name")]


def test_output_rules() -> None:
    issues = _issues(
        "  outputs:\n"
        "    - {field: score, statistic: ks, alert: Drift}\n"
        "    - {field: label, statistic: positive_rate, min: 0.01, max: 0.1, alert: Drift}\n"
        "    - {field: score, statistic: positive_rate, max: 0.1, alert: Drift}\n"
        "    - {field: label, statistic: wasserstein, alert: Drift}\n"
        "    - {field: proba, alert: Drift}\n" + ALERT
    )
    assert set(issues) == {
        ("monitoring", "outputs", 2, "statistic"),
        ("monitoring", "outputs", 3, "statistic"),
        ("monitoring", "outputs", 4, "field"),
    }
    positive = issues[("monitoring", "outputs", 2, "statistic")]
    assert "label output of a binary classifier" in positive


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{field: label, statistic: positive_rate, alert: Drift}", "needs min and/or max"),
        ("{field: label, statistic: positive_rate, min: 0.2, max: 0.1, alert: Drift}", "greater"),
        ("{field: score, statistic: psi, min: 0.1, alert: Drift}", "min/max apply to"),
        ("{field: label, statistic: positive_rate, max: 0.1, threshold: 0.1, alert: Drift}", "not"),
    ],
)
def test_positive_rate_band_is_checked_where_it_is_written(rule: str, message: str) -> None:
    err = _error(f"  outputs:\n    - {rule}\n{ALERT}")
    (issue,) = err.issues
    assert issue.path == "monitoring.outputs[0]"
    assert issue.line == 17
    assert message in issue.message


def test_service_and_slo_rules() -> None:
    issues = _issues(
        "  service:\n"
        "    - {metric: latency_p95, alert: Drift}\n"
        "    - {metric: latency_p99, alert: Drift}\n"
        "    - {metric: error_rate, threshold: 5, alert: Drift}\n"
        "  slos:\n"
        "    - {name: a, kind: availability, target: 0.999, latency_ms: 10, alert: Drift}\n"
        "    - {name: l, kind: latency, target: 0.99, latency_ms: 40, alert: Drift}\n"
        "    - {name: s, kind: availability, target: 0.99, window: 1h, alert: Drift}\n" + ALERT
    )
    assert set(issues) == {
        ("monitoring", "service", 1, "threshold"),
        ("monitoring", "service", 2, "threshold"),
        ("monitoring", "slos", 0, "latency_ms"),
        ("monitoring", "slos", 1, "latency_ms"),
        ("monitoring", "slos", 2, "window"),
    }
    assert "api.latency_budget.p99_ms" in issues[("monitoring", "service", 1, "threshold")]
    assert "not a bucket" in issues[("monitoring", "slos", 1, "latency_ms")]


def test_performance_rules_need_a_binary_classifier() -> None:
    text = BASE.replace("binary_classification", "regression") + (
        "  performance:\n    - {metric: recall, threshold: 0.5, alert: Drift}\n" + ALERT
    )
    issues = dict(monitoring_issues(HandoffSpec.model_validate(yaml.safe_load(text))))
    assert "binary classifiers" in issues[("monitoring", "performance", 0, "metric")]


def test_thresholds_default_by_statistic_and_breach_by_direction() -> None:
    spec = _spec(
        "  drift:\n    - {field: amount, alert: Drift}\n"
        "    - {field: amount, statistic: ks, alert: Drift}\n" + ALERT
    )
    psi, ks = spec.monitoring.drift
    assert (threshold_of(psi), threshold_of(ks)) == (0.2, 0.01)
    assert breached("psi", 0.3, 0.2) and not breached("psi", 0.1, 0.2)
    assert breached("ks", 0.001, 0.01) and not breached("ks", 0.5, 0.01)


def test_field_kinds() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    kinds = {name: field_kind(f) for name, f in spec.data_contract.fields.items()}
    assert kinds["amount_eur"] == kinds["hour_of_day"] == "numeric"
    assert kinds["country"] == kinds["device_changed"] == "categorical"
    assert kinds["transaction_id"] == kinds["event_time"] == "other"
    outputs = spec.outputs().fields
    assert (field_kind(outputs["score"]), field_kind(outputs["label"])) == (
        "numeric",
        "categorical",
    )


def test_latency_buckets_are_the_servers() -> None:
    from mlhandoff.serve.metrics import _LATENCY_BUCKETS

    assert tuple(b * 1000 for b in _LATENCY_BUCKETS) == pytest.approx(LATENCY_BUCKETS_MS)


def test_rule_problems_are_spec_errors_with_file_line_column() -> None:
    err = _error(
        "  drift:\n"
        "    - {field: amount, alert: Drift}\n"
        "    - {field: country, statistic: ks, alert: Drift}\n" + ALERT
    )
    (issue,) = err.issues
    assert str(issue).startswith("handoff.yaml:18:")
    assert issue.path == "monitoring.drift[1].statistic"


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(UNITS)))
def test_durations_parse_and_format_back(n: int, unit: str) -> None:
    seconds = duration_seconds(f"{n}{unit}")
    assert seconds == n * UNITS[unit]
    assert duration_seconds(format_duration(seconds)) == seconds


@given(st.text(max_size=8))
def test_anything_else_is_refused_with_advice(text: str) -> None:
    try:
        seconds = duration_seconds(text)
    except ValueError as exc:
        assert any(w in str(exc) for w in ("not a duration", "largest first", "whole seconds"))
    else:
        assert seconds >= 0 and text.strip()[-1] in UNITS


def test_example_frozen_spec_round_trips() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    again = parse_spec(dump_spec(spec))
    assert again.monitoring == spec.monitoring
    assert yaml.safe_load(dump_spec(spec))["monitoring"]["drift"][0]["for"] == "1h"


def test_one_window_per_field_and_statistic() -> None:
    issues = _issues(
        "  drift:\n"
        "    - {field: amount, window: 1d, alert: Drift}\n"
        "    - {field: amount, window: 1h, threshold: 0.5, alert: Drift}\n"
        "    - {field: amount, statistic: js, window: 1h, alert: Drift}\n" + ALERT
    )
    assert list(issues) == [("monitoring", "drift", 1, "window")]
    assert "measured over 1d by monitoring.drift[0]" in issues[("monitoring", "drift", 1, "window")]
