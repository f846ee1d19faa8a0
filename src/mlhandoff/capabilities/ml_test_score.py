"""The ML Test Score (Breck et al., 2017, "The ML Test Score: A Rubric for ML Production Readiness
and Technical Debt Reduction"), computed from what verify checked.

28 tests in four sections. A test earns half a point when it is done by hand with the result
documented, a full point when it is automated and runs repeatedly; a section's score is the sum
of its tests, and the final score is the lowest section (a handoff is as ready as its weakest
area). Here a point is earned only by evidence from this run of verify: a check that ran and did
not fail (``pass`` or ``warn``), a checklist line (a documented, manual practice: half a point),
or the record a run of ``mlhandoff repro`` or ``mlhandoff monitor`` left for this bundle digest
(``<bundle>.repro.json``, ``<bundle>.monitor.json``), and only for what that run computed. Tests
that nothing in mlhandoff can check are listed as such and earn nothing.

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
from mlhandoff.monitor.record import agrees, read_record
from mlhandoff.spec.metric_names import FAIRNESS

SECTIONS = ("Data", "Model", "Infrastructure", "Monitoring")
_EARNING = frozenset({"pass", "warn"})

#: What a piece of evidence may add: a condition on the bundle (None: always), with its reason.
Condition = Callable[[Bundle], str | None]


@dataclass(frozen=True)
class Evidence:
    """``points`` when the line ``check`` ran and did not fail, the lines ``also`` too, and
    ``condition`` (a function returning why not, or None) holds. ``"repro:<key>"`` reads the
    repro record instead, ``"monitor:<name>"`` the monitor record (see ``_FROM_MONITOR``)."""

    check: str
    points: float
    condition: Condition | None = None
    also: tuple[str, ...] = ()


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


def _service_rule(metric: str, what: str) -> Condition:
    def condition(bundle: Bundle) -> str | None:
        service = bundle.spec.monitoring.service
        ok = any(r.metric.startswith(metric) for r in service)
        return None if ok else f"no monitoring.service rule alerts on {what}"

    return condition


def _rollback_triggers(bundle: Bundle) -> str | None:
    return None if bundle.spec.rollback.triggers else "rollback.triggers is empty"


#: The server refuses requests that break the contract; alerted on their share.
_CONTRACT_ALERT = _service_rule("contract_failure_rate", "the share of refused requests")
_LATENCY_ALERT = _service_rule("latency_", "latency")

#: What a monitor record shows, by evidence name: a function of the record returning why it
#: does not earn (None: it does) and what it shows.
MonitorTest = Callable[[dict[str, Any]], tuple[str | None, str]]


def _versus_offline(kind: str) -> MonitorTest:
    """Online metrics (``kind``: realised or estimated) against acceptance's pack-time values:
    earned when at least one metric was compared and each meets the bound acceptance set. An
    estimate counts only where no realised value exists: once labels are in, they decide."""

    def test(record: dict[str, Any]) -> tuple[str | None, str]:
        perf = record.get("performance") or {}
        online, offline = perf.get(kind) or {}, perf.get("offline") or {}
        realised = perf.get("realised") or {}
        if kind != "realised" and any(realised.get(m) is not None for m in offline):
            return "realised performance is known: it decides", ""
        pairs = {
            m: (offline[m], online[m])
            for m in offline
            if isinstance(online.get(m), int | float) and isinstance(offline[m], dict)
        }
        if not pairs:
            return f"no {kind} metric that acceptance also measured", ""
        shown = ", ".join(
            f"{m} {kind} {v:.4g} vs {o['value']:.4g} at pack ({o['op']} {o['threshold']:g})"
            for m, (o, v) in pairs.items()
        )
        apart = [m for m, (o, v) in pairs.items() if not agrees(o, v)]
        return (f"{shown}: {', '.join(apart)} misses the accepted bound" if apart else None), shown

    return test


def _stable(record: dict[str, Any]) -> tuple[str | None, str]:
    read = {k: v for k, v in (record.get("output_values") or {}).items() if isinstance(v, dict)}
    values = sum(v.get("values", 0) for v in read.values())
    if not values:
        return "the run read no floating-point output", ""
    bad = {k: v["nonfinite"] for k, v in read.items() if v.get("nonfinite")}
    if bad:
        return "NaN or infinite outputs: " + ", ".join(f"{k} {n:,}" for k, n in bad.items()), ""
    return None, f"{values:,} output values read, none NaN or infinite"


def _quality(record: dict[str, Any]) -> tuple[str | None, str]:
    judged = [
        r for r in record.get("rules_judged") or [] if r.endswith(("(estimated)", "(realised)"))
    ]
    if not judged:
        return "no performance rule was judged", ""
    return None, f"{', '.join(judged)} judged on {record.get('windows', 0)} window(s)"


def _contract(record: dict[str, Any]) -> tuple[str | None, str]:
    if not record.get("contract_validated"):
        return "the run read a prediction log (validated by the server), not a table", ""
    return None, f"contract validated on {record.get('rows', 0):,} rows"


_FROM_MONITOR: dict[str, MonitorTest] = {
    "realised_vs_offline": _versus_offline("realised"),
    "estimated_vs_offline": _versus_offline("estimated"),
    "stable": _stable,
    "quality": _quality,
    "contract": _contract,
}

_STALENESS = (
    "nothing states how old is too old: the monitor record shows the evaluation data's age "
    "(reference_age_days), but the spec sets no bound on it"
)

TESTS: tuple[ScoreTest, ...] = (
    ScoreTest("data-1", "Data", "Feature expectations are captured in a schema",
         (Evidence("golden_contract", 1.0),)),
    ScoreTest("data-2", "Data", "All features are beneficial",
         unchecked="needs feature-ablation or permutation-importance runs (not done yet)"),
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
    ScoreTest("model-2", "Model", "Offline and online metrics correlate",
         (Evidence("monitor:realised_vs_offline", 1.0),
          Evidence("monitor:estimated_vs_offline", 0.5))),
    ScoreTest("model-3", "Model", "All hyperparameters have been tuned",
         unchecked="needs the tuning runs"),
    ScoreTest("model-4", "Model", "The impact of model staleness is known",
         unchecked="needs models trained on older data, compared on the same recent data"),
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
         (Evidence("rollout_manifests", 1.0, _rollback_triggers),
          Evidence("rollback_oncall", 0.5))),
    ScoreTest("monitor-1", "Monitoring", "Dependency changes result in notification",
         (Evidence("artifacts", 0.5),)),
    ScoreTest("monitor-2", "Monitoring", "Data invariants hold for inputs",
         (Evidence("monitor:contract", 1.0),
          Evidence("monitoring", 1.0, _CONTRACT_ALERT, also=("reference_profile",)),
          Evidence("monitoring", 0.5))),
    ScoreTest("monitor-3", "Monitoring", "Training and serving are not skewed",
         (Evidence("golden_replay", 1.0),)),
    ScoreTest("monitor-4", "Monitoring", "Models are not too stale", unchecked=_STALENESS),
    ScoreTest("monitor-5", "Monitoring", "Models are numerically stable",
         (Evidence("monitor:stable", 1.0),)),
    ScoreTest("monitor-6", "Monitoring", "Computing performance has not regressed",
         (Evidence("monitoring", 1.0, _LATENCY_ALERT), Evidence("monitoring", 0.5))),
    ScoreTest("monitor-7", "Monitoring", "Prediction quality has not regressed",
         (Evidence("monitor:quality", 1.0), Evidence("monitoring", 0.5))),
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
    if evidence.check.startswith("monitor:"):
        monitor = read_record(bundle)
        if monitor is None:
            return None
        why_not, shows = _FROM_MONITOR[evidence.check.split(":", 1)[1]](monitor)
        if why_not is not None:
            return None
        return evidence.points, f"{layout.monitor_record(bundle.root).name}: {shows}"
    results = [by_id.get(c) for c in (evidence.check, *evidence.also)]
    if any(r is None or r.status not in _EARNING for r in results):
        return None
    if evidence.condition is not None and evidence.condition(bundle) is not None:
        return None
    return evidence.points, "; ".join(f"{r.title}: {r.status}" for r in results if r)


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
    if evidence.check.startswith("monitor:"):
        monitor = read_record(bundle)
        if monitor is None:
            return f"no monitor record for this bundle digest ({layout.monitor_record(bundle.root).name})"
        why_not, _ = _FROM_MONITOR[evidence.check.split(":", 1)[1]](monitor)
        return f"monitor record: {why_not}"
    for check in (evidence.check, *evidence.also):
        result = by_id.get(check)
        if result is None:
            return f"{check} did not run"
        if result.status not in _EARNING:
            return f"{result.title}: {result.status}"
    result = by_id[evidence.check]
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
