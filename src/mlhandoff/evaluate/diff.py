"""``mlhandoff diff OLD NEW``: what an upgrade changes, and whether the spec's rule says go.

Metric deltas are paired (both versions score the same rows, one set of resamples); latency is
measured for both on this machine; data-contract compatibility comes from
``mlhandoff.contract.diff_contracts``. The rule is the NEW spec's ``acceptance.upgrade``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlhandoff.bundle.bundle import Bundle, open_bundle
from mlhandoff.contract.tables import TableLike
from mlhandoff.evaluate import latency as latency_mod
from mlhandoff.evaluate.report import AcceptanceReport, ResultRow, _clean
from mlhandoff.spec.metric_names import parse_metric
from mlhandoff.spec.models import HandoffSpec


def contract_changes(old: HandoffSpec, new: HandoffSpec) -> list[dict[str, Any]]:
    """Field-level changes of the data contract, each marked breaking or not."""
    from mlhandoff.contract import diff_contracts

    result = diff_contracts(old.data_contract, new.data_contract)
    return [
        {"field": c.field, "kind": c.kind, "breaking": bool(c.breaking), "detail": c.detail}
        for c in result.changes
    ]


@dataclass
class DiffReport:
    old: str
    new: str
    evaluation: AcceptanceReport
    contract: list[dict[str, Any]]
    latency: dict[str, Any] | None
    decision: str  # "go" or "no-go"
    reasons: list[str] = field(default_factory=list)

    @property
    def go(self) -> bool:
        return self.decision == "go"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "evaluation"}
        out["evaluation"] = self.evaluation.to_dict()
        return dict(_clean(out))


def diff_bundles(
    old: Bundle | str | Path,
    new: Bundle | str | Path,
    data: TableLike | None = None,
    *,
    latency: bool = True,
    resamples: int | None = None,
) -> DiffReport:
    """Compare two versions on the same data (default: NEW's packed evaluation sample)."""
    from mlhandoff.evaluate.run import evaluate_bundle

    a = old if isinstance(old, Bundle) else open_bundle(old)
    b = new if isinstance(new, Bundle) else open_bundle(new)
    changes = contract_changes(a.spec, b.spec)
    evaluation = evaluate_bundle(b, data, baseline=a, latency=False, resamples=resamples)
    timing = None
    if latency:
        timing = _latency(a, b, evaluation)
        evaluation.rows += latency_mod.budget_rows(timing["new"], b.spec.api.latency_budget)
    decision, reasons = decide(b.spec, evaluation, changes, timing)
    return DiffReport(a.root.name, b.root.name, evaluation, changes, timing, decision, reasons)


def _latency(old: Bundle, new: Bundle, evaluation: AcceptanceReport) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from mlhandoff.bundle import layout

    sample = new.root / layout.EVAL_SAMPLE
    inputs = pq.read_table(sample) if sample.exists() else new.golden()[0]
    out = {}
    for key, bundle in (("old", old), ("new", new)):
        cols = [c for c in bundle.spec.data_contract.fields if c in inputs.column_names]
        out[key] = latency_mod.measure(
            bundle.predictor().predict, inputs.select(cols), batch_size=new.spec.api.max_batch_size
        )
    out["p95_ratio"] = out["new"]["single"]["p95_ms"] / out["old"]["single"]["p95_ms"]
    return out


def decide(
    spec: HandoffSpec,
    evaluation: AcceptanceReport,
    changes: list[dict[str, Any]],
    timing: dict[str, Any] | None,
) -> tuple[str, list[str]]:
    """Apply ``acceptance.upgrade``; every reason for no-go is listed (or why it is a go)."""
    rule = spec.acceptance.upgrade
    blockers: list[str] = []
    notes: list[str] = []
    for row in evaluation.failed():
        blockers.append(f"NEW fails {row.label} {row.bound}: {row.reason}")
    for row in evaluation.rows:
        if row.kind == "criterion" and row.primary and row.baseline is not None:
            blockers += _primary_rule(row, rule.primary)
    breaking = [c for c in changes if c["breaking"]]
    if breaking and not rule.allow_breaking_contract:
        shown = "; ".join(f"{c['field']}: {c['detail']}" for c in breaking[:5])
        blockers.append(f"the data contract changes in a breaking way ({shown})")
    elif breaking:
        notes.append(f"{len(breaking)} breaking contract change(s), allowed by the rule")
    if timing is not None and rule.max_latency_ratio is not None:
        ratio = timing["p95_ratio"]
        if ratio > rule.max_latency_ratio:
            blockers.append(
                f"p95 single-row latency grows {ratio:.2f}x (allowed {rule.max_latency_ratio:g}x)"
            )
    if blockers:
        return "no-go", blockers
    notes.insert(0, f"every primary metric {rule.primary.replace('_', ' ')}, guardrails hold")
    return "go", notes


def _primary_rule(row: ResultRow, rule: str) -> list[str]:
    assert row.baseline is not None
    delta, lo, hi = row.baseline.delta, row.baseline.delta_low, row.baseline.delta_high
    if delta is None:
        return [f"{row.metric}: the change is undefined"]
    better = parse_metric(row.metric).greater_is_better
    # the gain interval, oriented so that positive is better
    g_lo, g_hi = (lo, hi) if better else (None if hi is None else -hi, None if lo is None else -lo)
    gain = delta if better else -delta
    if g_lo is None or g_hi is None:
        g_lo = g_hi = gain
    shown = f"Δ {delta:+.4g} [{lo if lo is not None else delta:+.4g}, {hi if hi is not None else delta:+.4g}]"
    if rule == "better" and not g_lo > 0:
        return [f"{row.metric} is not significantly better ({shown}); the rule requires better"]
    if rule == "not_worse" and g_hi < 0:
        return [f"{row.metric} is significantly worse ({shown})"]
    return []
