"""Acceptance: the spec's criteria and guardrails measured at pack on a seeded evaluation
sample (``data/eval_sample.parquet``, ``reports/acceptance.json``) and recomputed by verify."""

from __future__ import annotations

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
from mlhandoff.evaluate.run import (
    compare_reports,
    evaluate_bundle,
    pack_evaluation,
    recorded_report,
)


def measure(ctx: PackContext) -> None:
    report = pack_evaluation(ctx.spec, ctx.base, ctx.require_predictor(), ctx.root)
    if report is not None:
        ctx.measured["acceptance"] = report


def acceptance_measured(bundle: Bundle) -> Outcome:
    """Recompute the packed report from the bundle's own files; it must match and pass."""
    recorded = recorded_report(bundle)
    if recorded is None:
        if not bundle.spec.acceptance.criteria:
            return "skipped", "no criteria"
        return (
            "missing",
            "criteria were never measured: set acceptance.data in the spec and re-pack",
        )
    fresh = evaluate_bundle(bundle, latency=False)
    problems = compare_reports(recorded, fresh, bundle.spec.acceptance.tolerance)
    if problems:
        return (
            "fail",
            "recomputed results differ from reports/acceptance.json: " + "; ".join(problems[:3]),
        )
    failed = recorded.failed()
    if failed:
        return "fail", "; ".join(f"{r.label} {r.bound}: {r.verdict}" for r in failed[:3])
    unsure = recorded.inconclusive()
    detail = f"{recorded.summary()} on {recorded.n} rows (recomputed, identical)"
    if unsure:
        return "warn", f"{detail}; inconclusive: {', '.join(r.label for r in unsure[:4])}"
    return "pass", detail


def defined(view: HandoffView) -> Outcome:
    a = view.spec.acceptance
    gaps = []
    if not any(c.primary for c in a.criteria):
        gaps.append("acceptance.criteria has no primary criterion")
    if not a.guardrails:
        gaps.append("acceptance.guardrails is empty")
    return outcome(gaps, f"{len(a.criteria)} criteria, {len(a.guardrails)} guardrail(s)")


CAPABILITY = Capability(
    "acceptance",
    steps=(Step("acceptance", "evaluating acceptance criteria", measure),),
    checks=(
        Check(
            "acceptance_measured",
            "Acceptance re-measured on the bundled eval sample",
            acceptance_measured,
        ),
    ),
    checklist=(ChecklistLine("acceptance", "Acceptance metrics and guardrails defined", defined),),
)
