"""``mlhandoff rollout plan``: how many requests each graduation rule needs, and whether each
step of the rollout is long enough to get them at the expected traffic.

Two sample sizes per rule: the fixed-horizon one (a single look; what statsmodels computes,
for comparison with textbooks) and the one the judge really needs, since its anytime-valid
sequences are wider than a single look's interval. Step times use the judge's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.errors import InputError
from mlhandoff.rollout import stats
from mlhandoff.spec.durations import format_duration, parse_duration
from mlhandoff.spec.models import GraduationRule, HandoffSpec, RolloutStep
from mlhandoff.spec.rollout_rules import parse_rollout_metric

#: The spread of log latency assumed when neither the rule (sd) nor the latency budget says.
DEFAULT_LOG_SD = 0.5


@dataclass
class MetricPlan:
    metric: str
    goal: str
    test: str
    #: The baseline value the sizes assume (a rate or a mean; latency: None).
    baseline: float | None
    #: The effect sized for, in metric units (latency: the ratio's margin, as a ratio - 1).
    margin: float | None
    #: Share of requests that count for this metric (recall: the labelled positives).
    population: float
    #: Per arm, counted in the metric's own units (rows of its population).
    n_fixed: int | None = None
    n_sequential: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def requests_needed(self) -> float | None:
        """Requests per arm (of every kind) the judge needs for this metric."""
        if self.n_sequential is None:
            return None
        return self.n_sequential / self.population


@dataclass
class StepPlan:
    step: int
    traffic_percent: float
    duration: str
    candidate_requests: int
    baseline_requests: int
    min_samples: int | None
    #: Time at this share until every sized rule can decide (seconds; inf: never).
    seconds_needed: float | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RolloutPlan:
    bundle: str
    traffic_rps: float
    alpha: float
    power: float
    metrics: list[MetricPlan]
    steps: list[StepPlan]

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.steps for w in s.warnings] + [
            f"{m.metric}: {n}" for m in self.metrics for n in m.notes if n.startswith("cannot")
        ]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for m, raw in zip(self.metrics, out["metrics"], strict=True):
            raw["requests_needed"] = _finite(m.requests_needed)
        for raw in out["steps"]:
            raw["seconds_needed"] = _finite(raw["seconds_needed"])
        out["warnings"] = self.warnings
        return out


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def plan_bundle(bundle: Bundle, traffic_rps: float) -> RolloutPlan:
    """The plan of a bundle's spec; label metrics count the eval sample's positives."""
    return plan_rollout(
        bundle.spec, traffic_rps, prevalence=_prevalence(bundle), name=bundle.root.name
    )


def plan_rollout(
    spec: HandoffSpec, traffic_rps: float, *, prevalence: float | None = None, name: str = ""
) -> RolloutPlan:
    """Size every graduation rule of ``spec`` and time every step at ``traffic_rps``.

    ``prevalence`` is the share of positive labels (recall counts only those rows).
    """
    if not traffic_rps > 0 or math.isinf(traffic_rps):
        raise InputError(
            f"--traffic-rps must be a positive number of requests per second, got {traffic_rps}"
        )
    rollout = spec.rollout
    if not rollout.graduate_when:
        raise InputError(
            "the spec has no rollout.graduate_when rules to size: add rules such as "
            "{metric: error_rate, tolerance: 0.002}"
        )
    sized = [_size(rule, spec, prevalence) for rule in rollout.graduate_when]
    metrics = [m for m, _ in sized]
    steps = [
        _step(i + 1, step, traffic_rps, sized, rollout.alpha, rollout.power)
        for i, step in enumerate(rollout.steps)
    ]
    return RolloutPlan(
        name or f"{spec.name}-{spec.version}",
        traffic_rps,
        rollout.alpha,
        rollout.power,
        metrics,
        steps,
    )


#: Time to decide a rule given the candidate's and the baseline's values per second.
Timer = Callable[[float, float], float]


def _size(
    rule: GraduationRule, spec: HandoffSpec, prevalence: float | None
) -> tuple[MetricPlan, Timer | None]:
    """The rule's plan and a function (candidate rate, baseline rate) -> seconds to decide."""
    metric = parse_rollout_metric(rule.metric)
    alpha, power = spec.rollout.alpha, spec.rollout.power
    two_sided = rule.goal == "not_worse" and rule.direction() is None
    population = _population(rule.metric, spec, prevalence)
    notes: list[str] = []
    if metric.kind == "quantile":
        assert metric.quantile is not None
        log_sd, note = _log_sd(rule, spec)
        notes.append(note)
        ratio = 1 + (rule.relative_tolerance or 0.0)
        log_margin = math.log(ratio)
        sd_q = stats.quantile_log_sd(metric.quantile, log_sd)
        n_fixed = stats._normal_n(log_margin / sd_q, alpha, power, two_sided=False)
        plan = MetricPlan(
            rule.metric, rule.goal, "quantile ratio (log-normal)", None, ratio - 1, 1.0, n_fixed
        )

        def latency_time(rc: float, rb: float) -> float:
            return stats.quantile_decision_time(
                metric.quantile or 0.5, log_sd, log_margin, alpha, power, rc, rb
            )

        plan.n_sequential = _ceil(latency_time(1.0, 1.0))
        plan.notes = notes
        return plan, latency_time
    baseline = rule.expected
    margin = _margin(rule, baseline)
    if metric.kind == "rate":
        if baseline is None:
            baseline = 0.5
            notes.append("no expected value in the rule: sized for a rate of 0.5 (the widest)")
            margin = _margin(rule, baseline)
        test = "two proportions"
        sd: float | None = math.sqrt(baseline * (1 - baseline))
    else:
        test = "difference of means (t-test)"
        sd = rule.sd
        if sd is None:
            notes.append("cannot size: set sd (the spread of the values) in the rule")
    if margin is None:
        notes.append("cannot size: a relative tolerance needs the rule's expected value")
    plan = MetricPlan(rule.metric, rule.goal, test, baseline, margin, population, notes=notes)
    if margin is None or sd is None or margin <= 0:
        if margin == 0:
            notes.append("cannot size: a tolerance of 0 is never proven")
        return plan, None
    if metric.kind == "rate":
        assert baseline is not None
        # the value the rule must tell apart from the baseline's: worse by the tolerance, or
        # better by the mde
        up = rule.direction() is True if rule.goal == "better" else rule.direction() is not True
        other = min(max(baseline + margin if up else baseline - margin, 1e-9), 1 - 1e-9)
        plan.n_fixed = stats.proportions_n(baseline, other, alpha, power, two_sided)
    else:
        plan.n_fixed = stats.means_n(margin, sd, alpha, power, two_sided)
    tau = margin
    per_value_sd = sd

    def mean_time(rc: float, rb: float) -> float:
        return stats.mean_decision_time(per_value_sd, margin, tau, alpha, power, rc, rb)

    plan.n_sequential = _ceil(mean_time(1.0, 1.0))
    return plan, mean_time


def _ceil(value: float) -> int | None:
    return None if math.isinf(value) else math.ceil(value)


def _margin(rule: GraduationRule, baseline: float | None) -> float | None:
    """The effect the rule is decided at, in metric units."""
    if rule.goal == "better":
        return rule.mde
    if rule.tolerance is not None and rule.relative_tolerance is not None and baseline is not None:
        return min(rule.tolerance, rule.relative_tolerance * abs(baseline))
    if rule.tolerance is not None:
        return rule.tolerance
    if rule.relative_tolerance is not None and baseline is not None:
        return rule.relative_tolerance * abs(baseline)
    return None


def _log_sd(rule: GraduationRule, spec: HandoffSpec) -> tuple[float, str]:
    if rule.sd is not None:
        return rule.sd, f"sd of log latency {rule.sd:g} (from the rule)"
    budget = spec.api.latency_budget
    if budget is not None and budget.p50_ms and budget.p95_ms and budget.p95_ms > budget.p50_ms:
        log_sd = math.log(budget.p95_ms / budget.p50_ms) / stats.z(0.95)
        return log_sd, f"sd of log latency {log_sd:.3g} (from api.latency_budget p50 and p95)"
    return DEFAULT_LOG_SD, f"sd of log latency assumed {DEFAULT_LOG_SD:g} (set sd in the rule)"


def _population(metric: str, spec: HandoffSpec, prevalence: float | None) -> float:
    """Share of requests a label metric counts (recall: the positives)."""
    if metric == "recall" and prevalence:
        return prevalence
    if metric == "precision":
        rate = next(
            (r.expected for r in spec.rollout.graduate_when if r.metric == "positive_rate"), None
        )
        return rate or prevalence or 1.0
    return 1.0


def _prevalence(bundle: Bundle) -> float | None:
    """Share of positive labels in the packed evaluation sample (binary tasks)."""
    label = bundle.spec.data_contract.label
    path = bundle.root / layout.EVAL_SAMPLE
    if bundle.spec.model.task != "binary_classification" or not label or not path.exists():
        return None
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=[label])
    values = table.column(label).to_numpy(zero_copy_only=False)
    if values.dtype.kind not in "biuf" or len(values) == 0:
        return None
    share = float(np.mean(values == 1))
    return share if share > 0 else None


def _step(
    index: int,
    step: RolloutStep,
    rps: float,
    sized: list[tuple[MetricPlan, Timer | None]],
    alpha: float,
    power: float,
) -> StepPlan:
    seconds = parse_duration(step.duration).total_seconds()
    share = step.traffic_percent / 100.0
    rc, rb = rps * share, rps * (1 - share)
    out = StepPlan(
        index,
        step.traffic_percent,
        step.duration,
        int(rc * seconds),
        int(rb * seconds),
        step.min_samples,
        None,
    )
    label = f"step {index} ({step.traffic_percent:g}% for {step.duration})"
    if share >= 1.0:  # nothing left to compare with: the judge decided at the step before
        return out
    needs: list[tuple[float, str]] = []
    for plan, timer in sized:
        if timer is None:
            continue
        t = timer(rc * plan.population, rb * plan.population)
        needs.append((t, plan.metric))
    if needs:
        worst, metric = max(needs)
        out.seconds_needed = worst
        if worst > seconds:
            shown = "never at this share" if math.isinf(worst) else f"about {_human(worst)}"
            out.warnings.append(
                f"{label} is too short for {metric}: it needs {shown} at {rps:g} req/s "
                f"({out.candidate_requests:,} candidate requests in {step.duration})"
            )
    if step.min_samples is not None and step.min_samples > min(
        out.candidate_requests, out.baseline_requests
    ):
        out.warnings.append(
            f"{label}: min_samples {step.min_samples:,} per arm is more than the candidate gets "
            f"in {step.duration} ({out.candidate_requests:,})"
        )
    return out


def _human(seconds: float) -> str:
    from datetime import timedelta

    rounded = timedelta(seconds=max(60, round(seconds / 60) * 60))
    return format_duration(rounded)
