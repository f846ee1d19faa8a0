"""Monitoring: the reference profile every window is compared with, built at pack from the
evaluation sample (or the golden sample) and the model's outputs on it
(``data/reference_profile.json``; verify recounts it from the bundle's own rows), and the
documents rendered from the spec's rules: Prometheus alerting rules with their promtool unit
tests, a Grafana dashboard and the on-call runbook (the checklist holds them to the spec)."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.capability import (
    Capability,
    Check,
    ChecklistLine,
    HandoffView,
    Outcome,
    PackContext,
    Step,
    outcome,
)
from mlhandoff.errors import HandoffError
from mlhandoff.monitor.profile import Profile
from mlhandoff.monitor.reference import load_reference, profile_rows, recount, reference_rows
from mlhandoff.render.alerts import render_alert_tests, render_alerts
from mlhandoff.render.dashboard import render_dashboard
from mlhandoff.render.runbook import render_monitoring_block, render_runbook
from mlhandoff.spec.models import HandoffSpec, is_todo
from mlhandoff.spec.monitoring import monitoring_issues


def build_profile(ctx: PackContext) -> None:
    assert ctx.model is not None  # the model step ran first
    eval_sample = ctx.root / layout.EVAL_SAMPLE
    staged = pq.read_table(eval_sample) if eval_sample.exists() else None
    table, source = reference_rows(ctx.spec, staged, ctx.sample)
    profile = profile_rows(ctx.spec, ctx.model, ctx.require_predictor(), table, source)
    path = ctx.root / layout.REFERENCE_PROFILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.to_json()) + "\n", encoding="utf-8")
    ctx.measured["reference_profile"] = profile


#: The documents rendered from the spec: path → renderer.
DOCUMENTS: dict[str, Callable[[HandoffSpec], str]] = {
    layout.ALERT_RULES: render_alerts,
    layout.ALERT_TESTS: render_alert_tests,
    layout.DASHBOARD: render_dashboard,
    layout.RUNBOOK: render_runbook,
}


def write_documents(ctx: PackContext) -> None:
    for rel, render in DOCUMENTS.items():
        path = ctx.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(ctx.spec), encoding="utf-8")


def _disagreeing(view: HandoffView, paths: list[str]) -> list[str]:
    """Documents missing, or not what the spec renders now (edited, or rendered by another
    mlhandoff). Before pack (``mlhandoff check``) there is no bundle to read: pack renders
    them from this spec, so they will agree."""
    packed = view.report(layout.PACK_RECORD) is not None
    gaps = []
    for rel in paths:
        if rel not in view.files:
            gaps.append(f"no {rel}: re-pack")
        elif packed and (view.root / rel).read_text(encoding="utf-8") != DOCUMENTS[rel](view.spec):
            gaps.append(f"{rel} does not agree with the spec's monitoring section: re-pack")
    return gaps


def profile_recounted(bundle: Bundle) -> Outcome:
    """The stored reference is readable, profiles every field and output, and recounting it
    from the bundle's evaluation sample gives the same counts."""
    if layout.REFERENCE_PROFILE not in bundle.files:
        return "missing", f"no {layout.REFERENCE_PROFILE}: re-pack the bundle to monitor it"
    try:
        stored = load_reference(bundle)
        fresh = recount(bundle, stored)
    except HandoffError as exc:
        return "fail", str(exc)
    missing = [n for n in bundle.spec.data_contract.fields if n not in stored.inputs]
    missing += [n for n in bundle.outputs.fields if n not in stored.outputs]
    if missing:
        return "fail", f"the reference profile lacks {', '.join(missing)}"
    detail = f"{stored.rows} rows of {stored.source}"
    if fresh is None:
        return "pass", f"{detail} (not in the bundle: not recounted)"
    differ = _differences(stored, fresh)
    if differ:
        return "fail", "recounted reference differs in " + ", ".join(differ[:5])
    return "pass", f"{detail}, recounted identical"


def _differences(a: Profile, b: Profile) -> list[str]:
    out = []
    for role, fields in (("input", a.inputs), ("output", a.outputs)):
        other = b.inputs if role == "input" else b.outputs
        for name, p in fields.items():
            q = other.get(name)
            same = (
                q is not None
                and p.same_slots(q)
                and np.array_equal(p.counts, q.counts)
                and (p.sums is None or (q.sums is not None and np.allclose(p.sums, q.sums)))
            )
            if not same:
                out.append(f"{role} {name}")
    return out


def monitoring_line(view: HandoffView) -> Outcome:
    """Rules for SLOs and drift, each raising a defined alert; the reference profile; the alert
    rules, their unit tests and the dashboard as the spec renders them."""
    m = view.spec.monitoring
    gaps = []
    if not m.slos:
        gaps.append("monitoring.slos is empty")
    if not m.drift:
        gaps.append("monitoring.drift has no drift rule")
    if not m.alerts:
        gaps.append("monitoring.alerts is empty")
    gaps += [f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in monitoring_issues(view.spec)]
    if layout.REFERENCE_PROFILE not in view.files:
        gaps.append(f"no {layout.REFERENCE_PROFILE}: re-pack")
    gaps += _disagreeing(view, [layout.ALERT_RULES, layout.ALERT_TESTS, layout.DASHBOARD])
    rules = len(m.rules())
    return outcome(
        gaps,
        f"{len(m.slos)} SLO(s), {rules} rule(s), {len(m.alerts)} alert(s); reference profile, "
        "alerts.yaml (+ unit tests) and dashboard.json agree with the spec",
    )


def runbook_line(view: HandoffView) -> Outcome:
    """Every alert has runbook text, an owner to escalate to, and a rollback to fall back on;
    RUNBOOK.md is what the spec renders."""
    spec = view.spec
    gaps = [
        f"alert {a.name} has no runbook text" for a in spec.monitoring.alerts if is_todo(a.runbook)
    ]
    on_call = spec.owners.on_call
    if on_call is None or not on_call.escalation:
        gaps.append("owners.on_call.escalation is empty: the runbook has no one to escalate to")
    if is_todo(spec.rollback.plan):
        gaps.append("rollback.plan is not filled in")
    gaps += _disagreeing(view, [layout.RUNBOOK])
    return outcome(
        gaps,
        f"{len(spec.monitoring.alerts)} alert(s), each with diagnosis, rollback and escalation",
    )


def readme_block(view: HandoffView) -> str:
    profile = view.report(layout.REFERENCE_PROFILE)
    source = profile.get("source") if isinstance(profile, dict) else None
    return render_monitoring_block(view.spec, source)


CAPABILITY = Capability(
    "monitoring",
    steps=(
        Step("reference_profile", "profiling the reference data", build_profile),
        Step("monitoring_docs", "rendering alert rules, dashboard and runbook", write_documents),
    ),
    checks=(
        Check(
            "reference_profile",
            "Reference profile recounted from the bundle's rows",
            profile_recounted,
        ),
    ),
    checklist=(
        ChecklistLine("monitoring", "Monitoring and alerts specified", monitoring_line),
        ChecklistLine("runbook", "Runbook covers every alert", runbook_line),
    ),
    readme=readme_block,
    writes=(layout.REFERENCE_PROFILE, *DOCUMENTS),
)
