"""The monitoring documents pack renders, proven in the real tools: the alert rules pass
``promtool check rules`` and their unit tests pass ``promtool test rules`` (each alert fires after
its ``for:`` and not before); the dashboard's queries name only metrics the server exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import mlhandoff
from mlhandoff.bundle.manifest import build_manifest, read_manifest, write_manifest
from mlhandoff.render.alerts import alert_rules, burn_factor, render_alert_tests, render_alerts
from mlhandoff.render.dashboard import panel_queries
from mlhandoff.spec import load_spec
from serving import live_server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SPEC = ROOT / "examples" / "risky_transactions" / "handoff.yaml"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        raise RuntimeError(
            "promtool is not installed: run `make test` (it installs Debian's prometheus package) "
            "or apt-get install prometheus"
        )
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def exported(example_bundle: Path) -> set[str]:
    """Every series name a live server of the example exposes on /metrics (counters end in
    _total, histograms have _bucket/_count/_sum), whether or not it has been observed yet:
    the request metrics, the model's, and the live drift gauges."""
    with live_server(example_bundle, model_process=False) as server:
        text = server.client.get("/metrics").text
    names = set()
    for family in text_string_to_metric_families(text):
        names |= _sample_names(family)
    return names


def _sample_names(family: Metric) -> set[str]:
    if family.type == "counter":
        return {f"{family.name}_total", f"{family.name}_created"}
    if family.type == "histogram":
        return {f"{family.name}_{s}" for s in ("bucket", "count", "sum", "created")}
    return {family.name}


def _metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(mlhandoff_[a-z0-9_]+)\b", expr))


@pytest.fixture(scope="module")
def docs(example_bundle: Path) -> Path:
    return example_bundle / "docs"


def test_pack_writes_the_documents_the_spec_renders(docs: Path) -> None:
    spec = mlhandoff.open_bundle(docs.parent).spec
    assert (docs / "alerts.yaml").read_text() == render_alerts(spec)
    assert (docs / "alerts.test.yaml").read_text() == render_alert_tests(spec)
    rules = yaml.safe_load((docs / "alerts.yaml").read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert names == {a.name for a in spec.monitoring.alerts} - {"PerformanceDrop"}
    drift = next(r for r in rules if "amount_eur" in r["expr"])
    assert drift["expr"] == 'mlhandoff_drift{field="amount_eur",statistic="psi"} > 0.2'
    assert drift["for"] == "1h" and drift["labels"]["severity"] == "ticket"
    assert drift["annotations"]["runbook_url"] == "RUNBOOK.md#inputdrift"
    errors = next(r for r in rules if r["alert"] == "ServerErrors")
    assert errors["for"] == "10m" and 'status=~"5.."' in errors["expr"]
    assert errors["expr"].endswith("> 0.01")
    latency = next(r for r in rules if r["alert"] == "LatencyOverBudget")
    assert latency["expr"].startswith("histogram_quantile(0.95,") and latency["expr"].endswith(
        "> 25"
    )


def test_burn_rate_alerts_are_the_sre_workbooks() -> None:
    assert burn_factor(0.02, "30d", "1h") == pytest.approx(14.4)
    assert burn_factor(0.05, "30d", "6h") == pytest.approx(6)
    assert burn_factor(0.02, "7d", "1h") == pytest.approx(3.36)
    spec = load_spec(EXAMPLE_SPEC)
    burns = [r for r in alert_rules(spec) if r.labels.get("slo") == "availability"]
    assert [(r.labels["burn_rate"], r.labels["window"]) for r in burns] == [
        ("14.4", "1h/5m"),
        ("6", "6h/30m"),
    ]
    assert "[1h]))) > 0.0144 and (" in burns[0].expr
    assert burns[0].expr.count("[5m]") == 2 and burns[1].expr.count("[30m]") == 2
    latency = next(r for r in alert_rules(spec) if r.labels.get("slo") == "latency")
    assert 'le="0.05"' in latency.expr and "> 0.144 and" in latency.expr


def test_promtool_checks_the_rules_and_proves_each_alert(docs: Path) -> None:
    checked = _promtool("check", "rules", "alerts.yaml", cwd=docs)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = len(yaml.safe_load((docs / "alerts.yaml").read_text())["groups"][0]["rules"])
    assert f"SUCCESS: {rules} rules found" in checked.stdout
    tested = _promtool("test", "rules", "alerts.test.yaml", cwd=docs)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((docs / "alerts.test.yaml").read_text())["tests"]
    drift = next(c for c in cases if c["name"] == "InputDrift monitoring.drift[0]")
    before, after = drift["alert_rule_test"]
    assert (before["eval_time"], before["exp_alerts"]) == ("59m", [])  # for: 1h, not yet
    assert after["eval_time"] == "61m" and len(after["exp_alerts"]) == 1
    slow = next(c for c in cases if c["name"].startswith("ErrorBudgetBurn availability slow"))
    assert [a["exp_labels"]["burn_rate"] for a in slow["alert_rule_test"][0]["exp_alerts"]] == ["6"]


@pytest.mark.parametrize(
    ("old", "new", "count"),
    [
        ("    for: 1h\n", "    for: 50m\n", 1),  # fires before its for: has passed
        ("> 0.2\n", "> 0.9\n", 1),  # misses the breach
        ("> 0.0144", "> 0.0044", 2),  # the fast burn fires at the slow burn's rate
    ],
)
def test_the_unit_tests_catch_a_wrong_rule(
    docs: Path, tmp_path: Path, old: str, new: str, count: int
) -> None:
    shutil.copy(docs / "alerts.test.yaml", tmp_path)
    text = (docs / "alerts.yaml").read_text()
    assert text.count(old) >= count
    (tmp_path / "alerts.yaml").write_text(text.replace(old, new, count))
    assert _promtool("check", "rules", "alerts.yaml", cwd=tmp_path).returncode == 0
    tested = _promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0, tested.stdout


def test_every_query_names_a_metric_the_server_exports(
    docs: Path, tmp_path: Path, exported: set[str]
) -> None:
    assert {
        "mlhandoff_requests_total",
        "mlhandoff_request_latency_seconds_bucket",
        "mlhandoff_drift",
        "mlhandoff_null_rate",
        "mlhandoff_unseen_rate",
    } <= exported
    dashboard = json.loads((docs / "dashboard.json").read_text())
    queries = panel_queries(dashboard)
    assert len(queries) > 20
    for expr in queries:
        used = _metrics_in(expr)
        assert used and used <= exported, (expr, used - exported)
    rules = yaml.safe_load((docs / "alerts.yaml").read_text())["groups"][0]["rules"]
    for rule in rules:
        assert _metrics_in(rule["expr"]) <= exported, rule["expr"]
    # The queries parse as PromQL: promtool checks them as recording rules.
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": q} for i, q in enumerate(queries)],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yaml").write_text(yaml.safe_dump(recording))
    checked = _promtool("check", "rules", "dashboard_rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_query_for_an_unknown_metric_is_caught(exported: set[str]) -> None:
    """The check above can fail: a misspelt counter (no _total) is not exported."""
    assert _metrics_in("rate(mlhandoff_requests[5m])") - exported == {"mlhandoff_requests"}


def test_the_dashboard_shows_each_rule_and_the_budget(docs: Path) -> None:
    spec = mlhandoff.open_bundle(docs.parent).spec
    dashboard = json.loads((docs / "dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    titles = [p["title"] for p in panels]
    for rule in [*spec.monitoring.drift, *spec.monitoring.outputs]:
        assert any(t.startswith(f"{rule.field}: ") for t in titles), rule.field
    latency = next(p for p in panels if p["title"] == "Latency (ms)")
    steps = latency["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 25
    assert {p["gridPos"]["w"] for p in panels} == {12}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # a canary server: traffic, p95 latency and 5xx share per answering version (not "-",
    # the requests refused before a version was chosen), as the rollout judge compares them
    by_version = [p for p in panels if p["title"].endswith("by version")]
    exprs = [t["expr"] for p in by_version for t in p["targets"]]
    assert len(by_version) == 3 and all("version)" in e and 'version!="-"' in e for e in exprs)


def test_the_runbook_covers_every_alert(docs: Path) -> None:
    spec = mlhandoff.open_bundle(docs.parent).spec
    runbook = (docs / "RUNBOOK.md").read_text()
    for alert in spec.monitoring.alerts:
        section = runbook.split(f"\n## {alert.name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"mlhandoff monitor {spec.name}-{spec.version} --data <log-dir>" in section
        assert alert.runbook and alert.runbook.split()[0] in section
        assert "**Roll back:** Route 100% of traffic back" in section
        assert "risk-ml primary on-call → Risk ML lead → Head of Payments Risk" in section
    drift = runbook.split("\n## InputDrift\n", 1)[1].split("\n## ", 1)[0]
    assert 'mlhandoff_drift{field="country",statistic="js"} > 0.1' in drift
    assert "Dana Scientist <dana@example.com>" in runbook
    readme = (docs / "README.md").read_text()
    assert "## Monitoring" in readme and "`monitoring.drift[0]`" in readme
    assert "reference profile `data/reference_profile.json`: evaluation sample" in readme


def _resign(bundle: Path) -> None:
    meta = {
        k: v
        for k, v in read_manifest(bundle).items()
        if k in ("name", "version", "created_at", "created_by")
    }
    write_manifest(bundle, build_manifest(bundle, meta))


def test_verify_fails_documents_that_disagree_with_the_spec(
    example_bundle: Path, tmp_path: Path
) -> None:
    copy = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, copy)
    alerts = copy / "docs" / "alerts.yaml"
    alerts.write_text(alerts.read_text().replace("> 0.2\n", "> 0.5\n", 1))
    (copy / "docs" / "RUNBOOK.md").unlink()
    _resign(copy)
    checks = {r.id: r for r in mlhandoff.verify(copy).results}
    assert checks["monitoring"].status == "missing"
    assert "docs/alerts.yaml does not agree with the spec's monitoring section" in (
        checks["monitoring"].detail
    )
    assert checks["runbook"].status == "missing"
    assert "no docs/RUNBOOK.md" in checks["runbook"].detail


def test_runbook_line_needs_text_and_escalation(example_dir: Path) -> None:
    from mlhandoff.capabilities.monitoring import runbook_line
    from mlhandoff.capability import HandoffView
    from mlhandoff.pack.check import check_spec

    spec = load_spec(example_dir / "handoff.yaml")
    spec.monitoring.alerts[0].runbook = None
    assert spec.owners.on_call is not None
    spec.owners.on_call.escalation = []
    view = HandoffView(spec, example_dir, frozenset({"docs/RUNBOOK.md"}), None, lambda rel: None)  # type: ignore[arg-type]
    status, detail = runbook_line(view)
    assert status == "missing"
    assert "alert InputDrift has no runbook text" in detail and "escalation is empty" in detail
    before_pack = {r.id: r.status for r in check_spec(example_dir / "handoff.yaml").checklist}
    assert before_pack["monitoring"] == before_pack["runbook"] == "pass"
