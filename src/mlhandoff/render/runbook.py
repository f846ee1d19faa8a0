"""The on-call runbook (``docs/RUNBOOK.md``) and the README's monitoring section, from the spec:
for each alert, what it means, the rules that raise it, how to diagnose it with the exact
``mlhandoff`` and PromQL commands, how to roll back, who owns it and whom to escalate to."""

from __future__ import annotations

from dataclasses import dataclass

from mlhandoff.render.alerts import BURN_WINDOWS, alert_rules, burn_factor
from mlhandoff.render.documents import template
from mlhandoff.spec.models import HandoffSpec, OutputRule
from mlhandoff.spec.monitoring import STATISTICS, service_threshold, threshold_of


@dataclass(frozen=True)
class RuleLine:
    """One rule as people read it."""

    source: str
    alert: str
    what: str
    bound: str
    window: str
    for_: str
    #: Where it is judged: "live and batch", "live", "batch".
    judged: str


def rule_lines(spec: HandoffSpec) -> list[RuleLine]:
    m = spec.monitoring
    lines: list[RuleLine] = []
    for section, items in (("drift", m.drift), ("outputs", m.outputs)):
        for i, r in enumerate(items):
            if isinstance(r, OutputRule) and r.statistic == "positive_rate":
                lo, hi = r.min if r.min is not None else 0.0, r.max if r.max is not None else 1.0
                what, bound = f"share of positive {r.field}", f"in [{lo:g}, {hi:g}]"
            else:
                info = STATISTICS[r.statistic]
                what = f"{r.field} {r.statistic} ({info.meaning})"
                bound = f"{'<' if info.breach == 'below' else '>'} {threshold_of(r):g}"
            lines.append(
                RuleLine(
                    f"monitoring.{section}[{i}]",
                    r.alert,
                    what,
                    bound,
                    r.window,
                    r.for_,
                    "live and batch",
                )
            )
    for i, s in enumerate(m.service):
        threshold = service_threshold(s, spec) or 0.0
        unit = " ms" if s.metric.startswith("latency_") else ""
        judged = "live and batch (tables)" if s.metric == "contract_failure_rate" else "live"
        lines.append(
            RuleLine(
                f"monitoring.service[{i}]",
                s.alert,
                s.metric,
                f"> {threshold:g}{unit}",
                s.window,
                s.for_,
                judged,
            )
        )
    for i, p in enumerate(m.performance):
        how = "estimated from calibrated scores" if p.estimated else "realised, labels joined"
        lines.append(
            RuleLine(
                f"monitoring.performance[{i}]",
                p.alert,
                f"{p.metric} at the threshold ({how})",
                f">= {p.threshold:g}",
                p.window,
                p.for_,
                "batch",
            )
        )
    for i, slo in enumerate(m.slos):
        burns = ", ".join(
            f"{burn_factor(share, slo.window, long):g}x over {long} and {short}"
            for share, long, short in BURN_WINDOWS
        )
        lines.append(
            RuleLine(
                f"monitoring.slos[{i}]",
                slo.alert,
                f"{slo.name} SLO error-budget burn ({burns})",
                f"target {slo.target:g}",
                slo.window,
                "0m",
                "live",
            )
        )
    return lines


def render_runbook(spec: HandoffSpec) -> str:
    bundle = f"{spec.name}-{spec.version}"
    lines = rule_lines(spec)
    promql: dict[str, list[str]] = {}
    for rule in alert_rules(spec):
        promql.setdefault(rule.alert, []).append(rule.expr)
    return template("RUNBOOK.md.j2").render(spec=spec, bundle=bundle, lines=lines, promql=promql)


def render_monitoring_block(spec: HandoffSpec, reference: str | None) -> str:
    """The README's monitoring section: the rules, where they are judged, the files."""
    return template("MONITORING.md.j2").render(
        spec=spec, bundle=f"{spec.name}-{spec.version}", lines=rule_lines(spec), reference=reference
    )
