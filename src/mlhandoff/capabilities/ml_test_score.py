"""The ML Test Score (Breck et al., 2017, "The ML Test Score: A Rubric for ML Production Readiness
and Technical Debt Reduction"), computed from what verify checked.

28 tests in four sections. A test earns half a point when it is done by hand with the result
documented, a full point when it is automated and runs repeatedly; a section's score is the sum
of its tests, and the final score is the lowest section (a handoff is as ready as its weakest
area). Here a point is earned only by evidence from this run of verify: a check that ran and did
not fail (``pass`` or ``warn``), a checklist line (a documented, manual practice: half a point),
or the record a run of ``mlhandoff repro`` left for this bundle digest. Tests that nothing in
mlhandoff can check are listed as such and earn nothing.

``verify`` calls :func:`ml_test_score` last, with every result it produced: the capability
registry's ``Check`` sees one bundle, not the other checks' results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.checks import CheckResult
from mlhandoff.spec.metric_names import FAIRNESS

SECTIONS = ("Data", "Model", "Infrastructure", "Monitoring")
_EARNING = frozenset({"pass", "warn"})

#: What a piece of evidence may add: a condition on the bundle (None: always), with its reason.
Condition = Callable[[Bundle], str | None]


@dataclass(frozen=True)
class Evidence:
    """``points`` when the line ``check`` ran and did not fail, and ``condition`` (a function
    returning why not, or None) holds. ``"repro:<key>"`` reads the repro record instead."""

    check: str
    points: float
    condition: Condition | None = None


@dataclass(frozen=True)
class ScoreTest:
    id: str
    section: str
    title: str
    evidence: tuple[Evidence, ...] = ()
    #: Why nothing here can check it (for tests without evidence).
    unchecked: str = ""


def _has_baseline(bundle: Bundle) -> str | None:
    a = bundle.spec.acceptance
    relative = any(
        c.min_absolute_change is not None or c.min_relative_change is not None for c in a.criteria
    )
    return None if a.baseline and relative else "no criterion relative to acceptance.baseline"


def _has_slices(bundle: Bundle) -> str | None:
    sliced = [g for g in bundle.spec.acceptance.guardrails if g.by and g.metric not in FAIRNESS]
    return None if sliced else "no guardrail by slice"


def _has_fairness(bundle: Bundle) -> str | None:
    fair = [g for g in bundle.spec.acceptance.guardrails if g.metric in FAIRNESS]
    return None if fair else "no fairness guardrail"


def _log_retention(bundle: Bundle) -> str | None:
    return None if bundle.spec.privacy.log_retention else "privacy.log_retention unset"


_MONITOR = "monitoring runs only after deployment (mlhandoff monitor records nothing here yet)"

TESTS: tuple[ScoreTest, ...] = (
    ScoreTest("data-1", "Data", "Feature expectations are captured in a schema",
         (Evidence("golden_contract", 1.0),)),
    ScoreTest("data-2", "Data", "All features are beneficial",
         unchecked="needs feature-ablation experiments"),
    ScoreTest("data-3", "Data", "No feature's cost is too much",
         unchecked="needs the cost (latency, memory, upkeep) of each feature"),
    ScoreTest("data-4", "Data", "Features adhere to meta-level requirements",
         (Evidence("pii", 1.0),)),
    ScoreTest("data-5", "Data", "The data pipeline has appropriate privacy controls",
         (Evidence("model_card_privacy", 1.0, _log_retention),
          Evidence("model_card_privacy", 0.5))),
    ScoreTest("data-6", "Data", "New features can be added quickly",
         unchecked="a property of the feature pipeline, outside the bundle"),
    ScoreTest("data-7", "Data", "All input feature code is tested",
         unchecked="feature code lives upstream of the bundle"),
    ScoreTest("model-1", "Model", "Model specs are reviewed and submitted",
         (Evidence("signoffs", 1.0),)),
    ScoreTest("model-2", "Model", "Offline and online metrics correlate", unchecked=_MONITOR),
    ScoreTest("model-3", "Model", "All hyperparameters have been tuned",
         unchecked="needs the tuning runs"),
    ScoreTest("model-4", "Model", "The impact of model staleness is known", unchecked=_MONITOR),
    ScoreTest("model-5", "Model", "A simpler model is not better",
         (Evidence("acceptance_measured", 1.0, _has_baseline),)),
    ScoreTest("model-6", "Model", "Model quality is sufficient on important data slices",
         (Evidence("acceptance_measured", 1.0, _has_slices),)),
    ScoreTest("model-7", "Model", "The model is tested for considerations of inclusion",
         (Evidence("acceptance_measured", 1.0, _has_fairness),)),
    ScoreTest("infra-1", "Infrastructure", "Training is reproducible",
         (Evidence("repro:retrain", 1.0), Evidence("repro", 0.5))),
    ScoreTest("infra-2", "Infrastructure", "Model specs are unit tested",
         (Evidence("repro:tests", 1.0), Evidence("bundle_tests", 0.5))),
    ScoreTest("infra-3", "Infrastructure", "The ML pipeline is integration tested",
         (Evidence("repro_validated", 1.0),)),
    ScoreTest("infra-4", "Infrastructure", "Model quality is validated before serving",
         (Evidence("acceptance_measured", 1.0),)),
    ScoreTest("infra-5", "Infrastructure", "The model is debuggable",
         (Evidence("golden_replay", 1.0),)),
    ScoreTest("infra-6", "Infrastructure", "Models are canaried before serving",
         unchecked="the canary runs at rollout, after the handoff"),
    ScoreTest("infra-7", "Infrastructure", "Serving models can be rolled back",
         (Evidence("rollback_oncall", 0.5),)),
    ScoreTest("monitor-1", "Monitoring", "Dependency changes result in notification",
         (Evidence("artifacts", 0.5),)),
    ScoreTest("monitor-2", "Monitoring", "Data invariants hold for inputs",
         (Evidence("monitoring", 0.5),)),
    ScoreTest("monitor-3", "Monitoring", "Training and serving are not skewed",
         (Evidence("golden_replay", 1.0),)),
    ScoreTest("monitor-4", "Monitoring", "Models are not too stale", unchecked=_MONITOR),
    ScoreTest("monitor-5", "Monitoring", "Models are numerically stable", unchecked=_MONITOR),
    ScoreTest("monitor-6", "Monitoring", "Computing performance has not regressed",
         (Evidence("monitoring", 0.5),)),
    ScoreTest("monitor-7", "Monitoring", "Prediction quality has not regressed",
         (Evidence("monitoring", 0.5),)),
)  # fmt: skip


def _repro(bundle: Bundle) -> dict[str, Any] | None:
    """The repro record for this bundle digest, if a passing one exists."""
    path = layout.repro_record(bundle.root)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("bundle_digest") != bundle.digest:
        return None
    return record if record.get("ok") else None


def _earn(
    evidence: Evidence, by_id: dict[str, CheckResult], bundle: Bundle
) -> tuple[float, str] | None:
    if evidence.check.startswith("repro:"):
        record = _repro(bundle)
        key = evidence.check.split(":", 1)[1]
        value = (record or {}).get(key)
        if key == "retrain" and isinstance(value, dict):
            value = value.get("metrics_match")
        if not value:
            return None
        return evidence.points, f"{layout.repro_record(bundle.root).name}: {key} passed"
    result = by_id.get(evidence.check)
    if result is None or result.status not in _EARNING:
        return None
    if evidence.condition is not None and evidence.condition(bundle) is not None:
        return None
    return evidence.points, f"{result.title}: {result.status}"


def ml_test_score(bundle: Bundle, results: Sequence[CheckResult]) -> dict[str, Any]:
    """Every test's points and the evidence behind them, the section sums and the final score."""
    by_id = {r.id: r for r in results}
    rows: list[dict[str, Any]] = []
    for test in TESTS:
        earned = None
        for evidence in test.evidence:
            earned = _earn(evidence, by_id, bundle)
            if earned:
                break
        points, why = earned or (0.0, test.unchecked and f"not checkable here: {test.unchecked}")
        if not why:
            why = "not earned: " + "; ".join(_missing(e, by_id, bundle) for e in test.evidence)
        rows.append(
            {"id": test.id, "section": test.section, "title": test.title, "points": points,
             "evidence": why, "checkable": bool(test.evidence)}
        )  # fmt: skip
    sections = {s: sum(r["points"] for r in rows if r["section"] == s) for s in SECTIONS}
    return {"final": min(sections.values()), "sections": sections, "tests": rows}


def _missing(evidence: Evidence, by_id: dict[str, CheckResult], bundle: Bundle) -> str:
    if evidence.check.startswith("repro:"):
        return f"no passing repro record with {evidence.check.split(':', 1)[1]}"
    result = by_id.get(evidence.check)
    if result is None:
        return f"{evidence.check} did not run"
    if result.status not in _EARNING:
        return f"{result.title}: {result.status}"
    reason = evidence.condition(bundle) if evidence.condition else None
    return f"{result.title}: {reason}"


def score_line(score: dict[str, Any]) -> CheckResult:
    """The score as one line of the report: informational, never failing (warn below 5)."""
    sections = ", ".join(f"{s} {v:g}" for s, v in score["sections"].items())
    final = score["final"]
    return CheckResult(
        "ml_test_score",
        "ML Test Score (Breck et al. 2017)",
        "pass" if final > 5 else "warn",
        f"final {final:g}, the lowest of {sections}",
    )
