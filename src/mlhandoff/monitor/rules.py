"""The spec's monitoring rules compiled against a reference: each judges a window's counts.

A rule's value is measured over its own ``window`` (the trailing evaluation steps it spans,
merged: counts add); its alert is *pending* from the first step that breaches and *firing* once
the breach has lasted its ``for:``, as Prometheus evaluates an alerting rule. A step whose
value cannot be judged (no rows, fewer than ``min_rows``, a field missing from the data)
resets the clock, as a series that goes stale does in Prometheus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlhandoff.monitor.performance import ScoreCounts, estimated, realised
from mlhandoff.monitor.profile import FieldProfile, Profile, Role, category_text
from mlhandoff.monitor.stats import STATISTIC_FUNCTIONS, positive_share
from mlhandoff.spec.durations import duration_seconds
from mlhandoff.spec.models import DriftRule, HandoffSpec, OutputRule, PerformanceRule, ServiceRule
from mlhandoff.spec.monitoring import STATISTICS, breached, service_threshold, threshold_of


@dataclass
class WindowCounts:
    """What one evaluation step counted: the profile, the scores, contract failures."""

    profile: Profile
    scores: ScoreCounts | None = None
    checked: int = 0
    failing: int = 0
    violations: Counter[tuple[str, str]] = field(default_factory=Counter)

    def merge(self, other: WindowCounts) -> WindowCounts:
        scores = self.scores
        if scores is None:
            scores = other.scores
        elif other.scores is not None:
            scores = scores.merge(other.scores)
        return WindowCounts(
            self.profile.merge(other.profile),
            scores,
            self.checked + other.checked,
            self.failing + other.failing,
            self.violations + other.violations,
        )

    def empty(self) -> WindowCounts:
        scores = ScoreCounts.empty(self.scores.threshold) if self.scores is not None else None
        return WindowCounts(self.profile.empty(), scores)


#: A rule's verdict on a window: its value, whether it breaches (None: not judged), a note.
Verdict = tuple[float | None, bool | None, str]


@dataclass(frozen=True)
class CompiledRule:
    section: str
    index: int
    label: str
    alert: str
    window_s: int
    for_s: int
    bound: str
    judge: Callable[[WindowCounts], Verdict]
    #: Evaluated by ``mlhandoff monitor``; the rest only live, from the server's metrics.
    batch: bool = True
    #: The field a histogram shows when it breaches: (role, name).
    field: tuple[Role, str] | None = None
    statistic: str = ""


@dataclass(frozen=True)
class Context:
    spec: HandoffSpec
    reference: Profile
    #: The positive class as a category is written (``1``, ``true``, ``fraud``).
    positive: str
    #: Input fields whose values the log does not hold (PII redacted or hashed).
    redacted: frozenset[str] = frozenset()
    #: Whether contract failures were counted (plain tables; a server logs valid requests only).
    validated: bool = False


def positive_class(classes: Sequence[Any] | None) -> str:
    """A binary classifier's positive class as a category is written: its last class, else 1."""
    return category_text(classes[-1]) if classes else "1"


def compile_rules(ctx: Context) -> list[CompiledRule]:
    m = ctx.spec.monitoring
    rules: list[CompiledRule] = []
    rules += [_distribution(ctx, "drift", i, r, "input") for i, r in enumerate(m.drift)]
    rules += [
        _positive_rate(ctx, i, r)
        if r.statistic == "positive_rate"
        else _distribution(ctx, "outputs", i, r, "output")
        for i, r in enumerate(m.outputs)
    ]
    rules += [_service(ctx, i, r) for i, r in enumerate(m.service)]
    rules += [_performance(i, r) for i, r in enumerate(m.performance)]
    return rules


def _times(rule: DriftRule | ServiceRule | PerformanceRule) -> tuple[int, int]:
    return duration_seconds(rule.window), duration_seconds(rule.for_)


def _distribution(
    ctx: Context, section: str, index: int, rule: DriftRule, role: Role
) -> CompiledRule:
    threshold = threshold_of(rule)
    info = STATISTICS[rule.statistic]
    function = STATISTIC_FUNCTIONS[rule.statistic]
    reference = ctx.reference.field(role, rule.field)
    name = rule.field

    def judge(w: WindowCounts) -> Verdict:
        current = w.profile.field(role, name)
        problem = _unjudgeable(ctx, w, role, name, reference, current)
        if problem:
            return None, None, problem
        assert reference is not None and current is not None
        counted = current.rows if rule.statistic == "null_rate" else int(current.values.sum())
        value = function(reference, current)
        if value is None:
            return None, None, "no values (all null)" if current.rows else "no rows"
        if counted < rule.min_rows:
            return value, None, f"{counted} rows < min_rows {rule.min_rows}: not judged"
        return value, breached(rule.statistic, value, threshold), _partial(w, current)

    window_s, for_s = _times(rule)
    sign = "<" if info.breach == "below" else ">"
    return CompiledRule(
        section,
        index,
        f"{name} {rule.statistic}",
        rule.alert,
        window_s,
        for_s,
        f"{sign} {threshold:g}",
        judge,
        field=(role, name),
        statistic=rule.statistic,
    )


def _unjudgeable(
    ctx: Context,
    w: WindowCounts,
    role: str,
    name: str,
    reference: FieldProfile | None,
    current: FieldProfile | None,
) -> str:
    if role == "input" and name in ctx.redacted:
        return "redacted in the log (PII): judged live by the server only"
    if reference is None or current is None:
        return "not in the reference profile: re-pack"
    if w.profile.rows == 0:
        return "no rows"
    if current.rows == 0:
        return "not in the data"
    return ""


def _partial(w: WindowCounts, current: FieldProfile) -> str:
    if current.rows < w.profile.rows:
        return f"in {current.rows} of {w.profile.rows} rows"
    return ""


def _positive_rate(ctx: Context, index: int, rule: OutputRule) -> CompiledRule:
    reference = ctx.reference.outputs.get(rule.field)
    lo = rule.min if rule.min is not None else 0.0
    hi = rule.max if rule.max is not None else 1.0

    def judge(w: WindowCounts) -> Verdict:
        current = w.profile.outputs.get(rule.field)
        problem = _unjudgeable(ctx, w, "output", rule.field, reference, current)
        if problem:
            return None, None, problem
        assert current is not None
        value = positive_share(current, ctx.positive)
        if value is None:
            return None, None, "no values (all null)"
        counted = int(current.values.sum())
        if counted < rule.min_rows:
            return value, None, f"{counted} rows < min_rows {rule.min_rows}: not judged"
        return value, not lo <= value <= hi, _partial(w, current)

    window_s, for_s = _times(rule)
    return CompiledRule(
        "outputs",
        index,
        f"{rule.field} positive_rate",
        rule.alert,
        window_s,
        for_s,
        f"in [{lo:g}, {hi:g}]",
        judge,
        field=("output", rule.field),
        statistic="positive_rate",
    )


def _service(ctx: Context, index: int, rule: ServiceRule) -> CompiledRule:
    threshold = service_threshold(rule, ctx.spec) or 0.0
    window_s, for_s = _times(rule)
    unit = " ms" if rule.metric.startswith("latency_") else ""
    batch = rule.metric == "contract_failure_rate" and ctx.validated

    def judge(w: WindowCounts) -> Verdict:
        if not batch:
            why = (
                "a prediction log holds valid requests only: judged live (Prometheus)"
                if rule.metric == "contract_failure_rate"
                else "measured by the server: judged live (Prometheus)"
            )
            return None, None, why
        if w.checked == 0:
            return None, None, "no rows"
        value = w.failing / w.checked
        return value, value > threshold, ""

    return CompiledRule(
        "service",
        index,
        rule.metric,
        rule.alert,
        window_s,
        for_s,
        f"> {threshold:g}{unit}",
        judge,
        batch=batch,
    )


def _performance(index: int, rule: PerformanceRule) -> CompiledRule:
    window_s, for_s = _times(rule)
    how = "estimated" if rule.estimated else "realised"

    def judge(w: WindowCounts) -> Verdict:
        if w.scores is None:
            return None, None, "no score output in the data"
        if rule.estimated:
            n, value = w.scores.n, estimated(w.scores)[rule.metric]
        else:
            n, value = w.scores.labelled, realised(w.scores)[rule.metric]
            if n == 0:
                return None, None, "no labels joined (yet)"
        if value is None:
            return None, None, "undefined on this window (one class only)"
        if n < rule.min_rows:
            return (
                value,
                None,
                f"{n} {'rows' if rule.estimated else 'labels'} < min_rows {rule.min_rows}: not judged",
            )
        return value, value < rule.threshold, f"{n} labelled" if not rule.estimated else ""

    return CompiledRule(
        "performance",
        index,
        f"{rule.metric} ({how})",
        rule.alert,
        window_s,
        for_s,
        f">= {rule.threshold:g}",
        judge,
    )
