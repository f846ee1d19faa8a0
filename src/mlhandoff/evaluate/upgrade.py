"""The upgrade go/no-go rule (``acceptance.upgrade``): may NEW replace OLD?

Every blocker is listed: a failing criterion or guardrail, a primary metric that is not better
(or is worse) by its paired interval, a breaking contract change the rule does not allow, a
latency growth past ``max_latency_ratio``.
"""

from __future__ import annotations

from typing import Any

from mlhandoff.evaluate.report import AcceptanceReport, ResultRow
from mlhandoff.spec.metric_names import parse_metric
from mlhandoff.spec.models import HandoffSpec

#: Without a latency rule, a slowdown past this ratio is still called out (but does not block).
LATENCY_WARNING_RATIO = 1.5


def judge_upgrade(
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
    elif timing is not None and timing["p95_ratio"] > LATENCY_WARNING_RATIO:
        notes.append(
            f"WARNING: p95 single-row latency grows {timing['p95_ratio']:.2f}x; nothing limits it "
            "because acceptance.upgrade.max_latency_ratio is not set (set it to make this a no-go)"
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
