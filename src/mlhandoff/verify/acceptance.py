"""Verify lines for acceptance: packed results recomputed, and the repro dry run's record."""

from __future__ import annotations

import json

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.checks import CheckResult, Status

ACCEPTANCE_TITLE = "Acceptance re-measured on the bundled eval sample"
REPRO_TITLE = "Repro steps validated (mlhandoff repro)"


def acceptance_measured(bundle: Bundle) -> CheckResult:
    """Recompute the packed report from the bundle's own files; it must match and pass."""
    from mlhandoff.evaluate.run import compare_reports, evaluate_bundle, recorded_report

    recorded = recorded_report(bundle)
    if recorded is None:
        if not bundle.spec.acceptance.criteria:
            return CheckResult("acceptance_measured", ACCEPTANCE_TITLE, "skipped", "no criteria")
        return CheckResult(
            "acceptance_measured",
            ACCEPTANCE_TITLE,
            "missing",
            "criteria were never measured: set acceptance.data in the spec and re-pack",
        )
    fresh = evaluate_bundle(bundle, latency=False)
    problems = compare_reports(recorded, fresh, bundle.spec.acceptance.tolerance)
    if problems:
        return CheckResult(
            "acceptance_measured",
            ACCEPTANCE_TITLE,
            "fail",
            "recomputed results differ from reports/acceptance.json: " + "; ".join(problems[:3]),
        )
    failed = recorded.failed()
    if failed:
        shown = "; ".join(f"{r.label} {r.bound}: {r.verdict}" for r in failed[:3])
        return CheckResult("acceptance_measured", ACCEPTANCE_TITLE, "fail", shown)
    unsure = recorded.inconclusive()
    detail = f"{recorded.summary()} on {recorded.n} rows (recomputed, identical)"
    if unsure:
        names = ", ".join(r.label for r in unsure[:4])
        return CheckResult(
            "acceptance_measured", ACCEPTANCE_TITLE, "warn", f"{detail}; inconclusive: {names}"
        )
    return CheckResult("acceptance_measured", ACCEPTANCE_TITLE, "pass", detail)


def repro_validated(bundle: Bundle) -> CheckResult:
    """Read the record ``mlhandoff repro`` leaves next to the bundle (never inside: immutable)."""
    from mlhandoff.verify.repro import record_path

    path = record_path(bundle.root)
    if not path.exists():
        return CheckResult(
            "repro_validated",
            REPRO_TITLE,
            "skipped",
            f"not run yet: `mlhandoff repro {bundle.root}` records its result in {path.name}",
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return CheckResult(
            "repro_validated", REPRO_TITLE, "fail", f"{path.name} is unreadable: {exc}"
        )
    if not isinstance(record, dict):
        return CheckResult(
            "repro_validated", REPRO_TITLE, "fail", f"{path.name} is not a repro record"
        )
    if record.get("bundle_digest") != bundle.digest:
        return CheckResult(
            "repro_validated", REPRO_TITLE, "skipped", f"{path.name} is for another bundle digest"
        )
    status: Status = "pass" if record.get("ok") else "fail"
    frictions = record.get("frictions") or []
    detail = f"reproduced in {record.get('wall_s', 0):.0f}s in a fresh venv"
    if frictions:
        detail += "; friction: " + "; ".join(frictions[:3])
    return CheckResult("repro_validated", REPRO_TITLE, status, detail)
