"""Judging the spec's acceptance section on evaluation data: criteria and guardrails.

Every statistic (each criterion for the model and the baseline, each slice of each guardrail) is
computed on the same resamples, drawn once: intervals of differences are paired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mlhandoff._version import __version__
from mlhandoff.evaluate import bootstrap, fairness
from mlhandoff.evaluate.bootstrap import Interval
from mlhandoff.evaluate.data import EvalSet, Outputs
from mlhandoff.evaluate.metrics import Statistic, Weights, statistic
from mlhandoff.evaluate.report import (
    AcceptanceReport,
    BaselineComparison,
    ResultRow,
    SliceResult,
)
from mlhandoff.evaluate.verdicts import Bound, Verdict, combine
from mlhandoff.spec.metric_names import DEFAULT_THRESHOLDS, MetricRef, parse_metric
from mlhandoff.spec.models import Acceptance, Criterion, Guardrail

Job = Callable[[Weights], np.ndarray]


@dataclass
class _Plan:
    """Jobs registered for one run, read back by index once the resamples are done."""

    jobs: list[Job] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    samples: list[np.ndarray | None] = field(default_factory=list)

    def add(self, job: Job) -> int:
        self.jobs.append(job)
        return len(self.jobs) - 1

    def run(self, units: int, resamples: int, seed: int) -> None:
        self.points = bootstrap.point(self.jobs, units)
        self.samples = (
            list(bootstrap.run(self.jobs, units, resamples, seed))
            if resamples
            else [None] * len(self.jobs)
        )


def units_of(data: EvalSet) -> int:
    if data.task == "ranking" and data.query is not None:
        return int(data.query.max()) + 1
    return data.rows


def evaluate_sets(
    acceptance: Acceptance,
    data: EvalSet,
    model: Outputs,
    baseline: Outputs | None = None,
    *,
    data_name: str = "data",
    baseline_name: str | None = None,
    resamples: int | None = None,
) -> AcceptanceReport:
    """Every criterion and guardrail of ``acceptance``, judged on ``data``."""
    settings = acceptance.bootstrap
    n_resamples = settings.resamples if resamples is None else resamples
    plan = _Plan()
    builders = [_criterion(c, data, model, baseline, plan) for c in acceptance.criteria]
    builders += [
        _guardrail(g, data, model, plan, g.min_slice_size or acceptance.min_slice_size)
        for g in acceptance.guardrails
    ]
    plan.run(units_of(data), n_resamples, settings.seed)
    rows = [build(plan, settings.confidence) for build in builders]
    return AcceptanceReport(
        rows=rows,
        data=data_name,
        n=data.rows,
        units=units_of(data),
        resamples=n_resamples,
        seed=settings.seed,
        confidence=settings.confidence,
        baseline=baseline_name if baseline is not None else None,
        version=__version__,
    )


Builder = Callable[[_Plan, float], ResultRow]


def _direction(c: Criterion | Guardrail, ref: MetricRef) -> bool:
    if c.greater_is_better is not None:
        return c.greater_is_better
    if c.op is not None:
        return c.op[0] == ">"
    return ref.greater_is_better


def _criterion(
    c: Criterion, data: EvalSet, model: Outputs, baseline: Outputs | None, plan: _Plan
) -> Builder:
    ref = parse_metric(c.metric, data.task)
    better = _direction(c, ref)
    m = plan.add(statistic(ref, data, model))
    b = plan.add(statistic(ref, data, baseline)) if baseline is not None else None

    def build(plan: _Plan, confidence: float) -> ResultRow:
        est = bootstrap.interval(float(plan.points[m]), plan.samples[m], confidence)
        parts: list[tuple[Verdict, str]] = []
        bounds: list[str] = []
        if c.threshold is not None:
            bound = Bound(c.op or (">=" if better else "<="), c.threshold)
            bounds.append(str(bound))
            parts.append((bound.judge(est), f"{c.metric} {_shown(est)} vs {bound}"))
        comparison = None
        if b is not None:
            comparison, gains = _compare(plan, m, b, confidence, better)
        for change, relative in ((c.min_absolute_change, False), (c.min_relative_change, True)):
            if change is None:
                continue
            text = f"{change:+.1%}" if relative else f"{change:+g}"
            bounds.append(f"gain ≥ {text} vs baseline")
            if b is None:
                parts.append(
                    (
                        "inconclusive",
                        "no baseline to compare with (--baseline, or baseline= in Python)",
                    )
                )
                continue
            gain = gains[1] if relative else gains[0]
            bound = Bound(">=", change)
            parts.append((bound.judge(gain), f"gain {_shown(gain, relative)} vs {text}"))
        verdict = combine(v for v, _ in parts)
        reason = _undefined_reason(ref, data, model) if np.isnan(est.value) else ""
        decisive = [why for v, why in parts if v == verdict] or [why for _, why in parts]
        reason = "; ".join(x for x in (reason, *decisive, _undefined_note(est)) if x)
        return ResultRow(
            kind="criterion",
            metric=ref.name,
            bound=", ".join(bounds),
            verdict=verdict,
            value=est.value,
            low=est.low,
            high=est.high,
            primary=c.primary,
            reason=reason,
            baseline=comparison,
            description=c.description,
        )

    return build


def _compare(
    plan: _Plan, m: int, b: int, confidence: float, better: bool
) -> tuple[BaselineComparison, tuple[Interval, Interval]]:
    base = bootstrap.interval(float(plan.points[b]), plan.samples[b], confidence)
    sign = 1.0 if better else -1.0
    pm, pb = float(plan.points[m]), float(plan.points[b])
    sm, sb = plan.samples[m], plan.samples[b]
    delta = bootstrap.interval(pm - pb, None if sm is None or sb is None else sm - sb, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = bootstrap.interval(
            sign * (pm - pb), None if sm is None or sb is None else sign * (sm - sb), confidence
        )
        relative = bootstrap.interval(
            sign * (pm - pb) / abs(pb),
            None if sm is None or sb is None else sign * (sm - sb) / np.abs(sb),
            confidence,
        )
    comparison = BaselineComparison(
        base.value, base.low, base.high, delta.value, delta.low, delta.high
    )
    return comparison, (gain, relative)


def _guardrail(g: Guardrail, data: EvalSet, model: Outputs, plan: _Plan, min_size: int) -> Builder:
    ref = parse_metric(g.metric, data.task)
    threshold = g.threshold if g.threshold is not None else DEFAULT_THRESHOLDS[ref.name]
    bound = Bound(g.op or (">=" if _direction(g, ref) else "<="), threshold)
    if g.by is None:
        return _overall_guardrail(g, ref, bound, data, model, plan)
    slices = data.slices[g.by]
    unit_codes = _unit_codes(data, slices.codes)
    sizes = np.bincount(unit_codes, minlength=len(slices.names))
    big = np.flatnonzero(sizes >= min_size)
    small = [
        SliceResult(
            slices.names[i],
            int(sizes[i]),
            None,
            note=f"{sizes[i]} {'queries' if data.task == 'ranking' else 'rows'} < min_slice_size {min_size}: too small to judge",
        )
        for i in np.flatnonzero((sizes > 0) & (sizes < min_size))
    ]
    if ref.fairness:
        return _fairness_guardrail(
            g, ref, bound, data, model, plan, unit_codes, big, slices.names, small
        )
    jobs = {}
    for i in big:
        cols = np.flatnonzero(unit_codes == i)
        sub, sub_out = _subset(data, model, cols)
        stat = statistic(ref, sub, sub_out)
        jobs[int(i)] = (plan.add(_on_columns(stat, cols)), sub, sub_out)

    def build(plan: _Plan, confidence: float) -> ResultRow:
        results = []
        for i, (j, sub, sub_out) in jobs.items():
            est = bootstrap.interval(float(plan.points[j]), plan.samples[j], confidence)
            verdict = bound.judge(est)
            note = (
                _undefined_reason(ref, sub, sub_out)
                if np.isnan(est.value)
                else _undefined_note(est)
            )
            results.append(
                SliceResult(
                    slices.names[i], int(sizes[i]), est.value, est.low, est.high, verdict, note
                )
            )
        judged = results + small
        verdict = combine(s.verdict for s in judged) if judged else "inconclusive"
        worst = _worst(results, small, bound)
        reason = _slice_reason(worst, judged, bound, ref.name)
        return ResultRow(
            kind="guardrail",
            metric=ref.name,
            by=g.by,
            bound=str(bound),
            verdict=verdict,
            value=worst.value if worst else None,
            low=worst.low if worst else None,
            high=worst.high if worst else None,
            reason=reason,
            slice=worst.name if worst else None,
            slices=judged,
            description=g.description,
        )

    return build


def _overall_guardrail(
    g: Guardrail, ref: MetricRef, bound: Bound, data: EvalSet, model: Outputs, plan: _Plan
) -> Builder:
    j = plan.add(statistic(ref, data, model))

    def build(plan: _Plan, confidence: float) -> ResultRow:
        est = bootstrap.interval(float(plan.points[j]), plan.samples[j], confidence)
        verdict = bound.judge(est)
        reason = _undefined_reason(ref, data, model) if np.isnan(est.value) else ""
        reason = "; ".join(
            x for x in (reason, f"{_shown(est)} vs {bound}", _undefined_note(est)) if x
        )
        return ResultRow(
            kind="guardrail",
            metric=ref.name,
            bound=str(bound),
            verdict=verdict,
            value=est.value,
            low=est.low,
            high=est.high,
            reason=reason,
            description=g.description,
        )

    return build


def _fairness_guardrail(
    g: Guardrail,
    ref: MetricRef,
    bound: Bound,
    data: EvalSet,
    model: Outputs,
    plan: _Plan,
    codes: np.ndarray,
    big: np.ndarray,
    names: list[str],
    small: list[SliceResult],
) -> Builder:
    rates = fairness.rates_job(ref.name, data, model, codes, big)
    j = plan.add(lambda w: fairness.aggregate(ref.name, rates(w)))
    big_names = [names[i] for i in big]

    def build(plan: _Plan, confidence: float) -> ResultRow:
        est = bootstrap.interval(float(plan.points[j]), plan.samples[j], confidence)
        point_rates = rates(Weights(np.ones((1, data.rows), dtype=np.int64)))
        detail, breaking = fairness.explain(ref.name, point_rates, big_names, bound.threshold)
        undefined = fairness.undefined_groups(point_rates, big_names)
        verdict = bound.judge(est) if len(big) >= 2 else "inconclusive"
        notes = []
        if len(big) < 2:
            notes.append(f"fewer than 2 slices of '{g.by}' have at least the minimum size")
        if undefined:
            notes.append(f"rate undefined in {', '.join(undefined)} (no rows of that class)")
        if small:
            verdict = combine([verdict, "inconclusive"])
            notes.append(f"too small to judge: {', '.join(s.name for s in small)}")
        reason = "; ".join(
            x for x in (f"{_shown(est)} vs {bound}", detail, *notes, _undefined_note(est)) if x
        )
        slice_results = [
            SliceResult(n, int((codes == i).sum()), None, verdict="pass")
            for n, i in zip(big_names, big, strict=True)
        ]
        rate_kind = next(iter(point_rates.rates))
        for s, value in zip(slice_results, point_rates.rates[rate_kind][0], strict=True):
            s.value = float(value)
            s.note = fairness.RATE_NAMES[rate_kind]
            s.verdict = "inconclusive" if np.isnan(value) else "pass"
        named = breaking[0] if verdict == "fail" and breaking else None
        if verdict == "fail":
            for s in slice_results:
                if any(b.split(" ")[0] == s.name for b in breaking):
                    s.verdict = "fail"
        return ResultRow(
            kind="guardrail",
            metric=ref.name,
            by=g.by,
            bound=str(bound),
            verdict=verdict,
            value=est.value,
            low=est.low,
            high=est.high,
            reason=reason,
            slice=named,
            slices=slice_results + small,
            description=g.description,
        )

    return build


def _unit_codes(data: EvalSet, codes: np.ndarray) -> np.ndarray:
    """Slice code per resampling unit: per row, or per query (its first row's) for ranking."""
    if data.task != "ranking" or data.query is None:
        return codes
    first = np.full(int(data.query.max()) + 1, -1, dtype=np.int64)
    rows = np.arange(len(codes))[::-1]
    first[data.query[rows]] = codes[rows]
    return first


def _subset(data: EvalSet, model: Outputs, units: np.ndarray) -> tuple[EvalSet, Outputs]:
    rows = (
        units
        if data.task != "ranking" or data.query is None
        else np.flatnonzero(np.isin(data.query, units))
    )
    return data.take(rows), model.take(rows)


def _on_columns(stat: Statistic, cols: np.ndarray) -> Job:
    return lambda w: stat(w.columns(cols))


def _worst(
    results: list[SliceResult], small: list[SliceResult], bound: Bound
) -> SliceResult | None:
    """The slice to name: a failing one, else an inconclusive one, else the lowest margin."""
    for verdict in ("fail", "inconclusive"):
        hits = [s for s in results if s.verdict == verdict]
        if hits:
            return min(hits, key=lambda s: _margin(s, bound))
    if small:
        return small[0]
    return min(results, key=lambda s: _margin(s, bound)) if results else None


def _margin(s: SliceResult, bound: Bound) -> float:
    if s.value is None or np.isnan(s.value):
        return -np.inf
    return (s.value - bound.threshold) * (1 if bound.op[0] == ">" else -1)


def _slice_reason(
    worst: SliceResult | None, judged: list[SliceResult], bound: Bound, metric: str
) -> str:
    if worst is None:
        return "no slice to judge"
    shown = "undefined" if worst.value is None or np.isnan(worst.value) else f"{worst.value:.4g}"
    text = f"worst slice {worst.name}: {metric} {shown}"
    if worst.low is not None and worst.high is not None:
        text += f" [{worst.low:.4g}, {worst.high:.4g}]"
    text += f" vs {bound}"
    if worst.note:
        text += f" ({worst.note})"
    counts = {v: sum(s.verdict == v for s in judged) for v in ("fail", "inconclusive")}
    extra = ", ".join(f"{n} slice(s) {v}" for v, n in counts.items() if n)
    return f"{text}; {extra}" if extra else text


def _shown(est: Interval, percent: bool = False) -> str:
    fmt = (lambda x: f"{x:+.2%}") if percent else (lambda x: f"{x:.4g}")
    if np.isnan(est.value):
        return "undefined"
    if est.low is None or est.high is None:
        return fmt(est.value)
    return f"{fmt(est.value)} [{fmt(est.low)}, {fmt(est.high)}]"


def _undefined_note(est: Interval) -> str:
    if not est.undefined:
        return ""
    note = f"{est.undefined} of {est.resamples} resamples undefined and left out"
    return note + (": too few to judge" if est.thin else "")


def _undefined_reason(ref: MetricRef, data: EvalSet, model: Outputs) -> str:
    if data.task == "binary_classification":
        pos = int(data.y.sum())
        neg = data.rows - pos
        if pos == 0 or neg == 0:
            return (
                f"{ref.name} is undefined: the data has a single class "
                f"({pos} positive, {neg} negative rows)"
            )
        if model.pred is not None and ref.base == "precision" and not model.pred.any():
            return "precision is undefined: the model predicts no positives at its threshold"
    return f"{ref.name} is undefined on this data"
