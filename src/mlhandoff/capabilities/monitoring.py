"""Monitoring: the reference profile every window is compared with, built at pack from the
evaluation sample (or the golden sample) and the model's outputs on it
(``data/reference_profile.json``); verify recounts it from the bundle's own rows."""

from __future__ import annotations

import json

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
from mlhandoff.spec.models import is_todo


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


def profile_recounted(bundle: Bundle) -> Outcome:
    """The stored reference is readable, profiles every field and output, and recounting it
    from the bundle's evaluation sample gives the same counts."""
    if layout.REFERENCE_PROFILE not in bundle.files:
        return "missing", f"no {layout.REFERENCE_PROFILE}: re-pack the bundle to monitor it"
    try:
        stored = load_reference(bundle)
        fresh = recount(bundle)
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
    m = view.spec.monitoring
    gaps = []
    if not m.slos:
        gaps.append("monitoring.slos is empty")
    if not m.drift:
        gaps.append("monitoring.drift has no drift rule")
    if not m.alerts:
        gaps.append("monitoring.alerts is empty")
    if layout.REFERENCE_PROFILE not in view.files:
        gaps.append(f"no {layout.REFERENCE_PROFILE}: re-pack")
    gaps += [f"alert {a.name} has no runbook text" for a in m.alerts if is_todo(a.runbook)]
    rules = len(m.rules())
    return outcome(
        gaps, f"{len(m.slos)} SLO(s), {rules} rule(s), {len(m.alerts)} alert(s), reference profile"
    )


CAPABILITY = Capability(
    "monitoring",
    steps=(Step("reference_profile", "profiling the reference data", build_profile),),
    checks=(
        Check(
            "reference_profile",
            "Reference profile recounted from the bundle's rows",
            profile_recounted,
        ),
    ),
    checklist=(ChecklistLine("monitoring", "Monitoring and alerts specified", monitoring_line),),
    writes=(layout.REFERENCE_PROFILE,),
)
