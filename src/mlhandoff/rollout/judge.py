"""``mlhandoff rollout judge``: graduate, continue or roll back, from the prediction log.

Each graduation rule is compared between the candidate and the baseline twice:

* the anytime-valid view (``stats``): a confidence sequence of the effect. A rule is *proven*
  when the whole sequence lies on the good side of its bound, *harmful* (failing) when it lies
  wholly beyond it on the worse side, else undecided;
* the Kayenta view of this one look: Mann-Whitney with a Hodges-Lehmann interval (means;
  latency on the log scale, so a ratio), or the Agresti-Caffo interval (rates), against the
  rule's tolerance band -> pass / high / low / no-data.

The canary score is the weighted share of rules (with data) not failing. Verdict: roll back
when a trigger fired, a critical rule fails or the score falls under ``marginal_score``;
graduate when every rule is proven, the Kayenta view flags none on its worse side, the score
reaches ``pass_score`` and the step's minimum duration and samples are reached; otherwise
continue. Only anytime-valid evidence graduates or rolls back (a one-look interval read every
hour would cross its bound by chance sooner or later): a candidate that does not meet its rules
graduates at most alpha of the time, however often the judge looks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.errors import InputError
from mlhandoff.rollout import stats
from mlhandoff.rollout.logs import VERSION, join_labels, read_prediction_log
from mlhandoff.rollout.observations import Observations, columns_needed, observe
from mlhandoff.rollout.triggers import TriggerResult, evaluate_trigger
from mlhandoff.spec.durations import parse_duration
from mlhandoff.spec.models import GraduationRule, HandoffSpec
from mlhandoff.spec.rollout_rules import parse_rollout_metric

Verdict = Literal["graduate", "continue", "rollback"]
#: Exit codes of ``mlhandoff rollout judge``: what a pipeline branches on.
EXIT_CODES: dict[str, int] = {"graduate": 0, "rollback": 1, "continue": 4}
#: Fewer observations per arm than this: the rule has no data yet.
MIN_OBSERVATIONS = 30
#: The Kayenta view ranks at most this many values per arm (seeded sample).
KAYENTA_SAMPLE = 50_000


@dataclass
class RuleResult:
    metric: str
    goal: str
    critical: bool
    weight: float
    rule: str
    n_candidate: int = 0
    n_baseline: int = 0
    candidate: float | None = None
    baseline: float | None = None
    #: candidate - baseline (rates, means) or candidate / baseline (latency).
    effect: float | None = None
    effect_kind: str = "difference"
    #: The tolerance band around "no change", in effect units.
    band: list[float] | None = None
    #: Kayenta view: pass / high / low / no-data, from a one-look interval; flagged: on the
    #: rule's worse side (holds graduation back, never rolls back alone).
    classification: str = "no-data"
    flagged: bool = False
    interval: list[float] | None = None
    p_value: float | None = None
    #: Anytime-valid view: proven / harmful / undecided / no-data.
    decision: str = "no-data"
    sequence: list[float] | None = None
    failing: bool = False
    detail: str = ""


@dataclass
class Judgement:
    verdict: Verdict
    reasons: list[str]
    candidate: str
    baseline: str
    step: int | None
    traffic_percent: float | None
    observed_percent: float
    next_weight: float | None
    elapsed_s: float
    requests: dict[str, int]
    score: float | None
    rules: list[RuleResult]
    triggers: list[TriggerResult]
    alpha: float
    skipped_files: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["exit_code"] = self.exit_code
        return _json_safe(out)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def judge_rollout(
    bundle: Bundle,
    logs: Path,
    *,
    labels: Path | None = None,
    join_key: str | None = None,
    baseline_version: str | None = None,
    step: int | None = None,
    since: datetime | None = None,
) -> Judgement:
    """Judge the candidate (``bundle``) against the baseline in the prediction log at ``logs``."""
    spec = bundle.spec
    rollout = spec.rollout
    if not rollout.graduate_when and not spec.rollback.triggers:
        raise InputError(
            "the spec has no rollout.graduate_when rules and no rollback.triggers to judge by"
        )
    if (labels is None) != (join_key is None):
        raise InputError("--labels and --join-key go together: the file and the key to join on")
    metrics = [r.metric for r in rollout.graduate_when] + [t.metric for t in spec.rollback.triggers]
    start = None if since is None else np.datetime64(since.astimezone(UTC).replace(tzinfo=None))
    wanted = columns_needed(spec, metrics)
    if join_key is not None:
        wanted |= {join_key, f"input.{join_key}"}
    log = read_prediction_log(logs, wanted, start)
    table = log.table
    candidate = spec.version
    baseline = _baseline_version(spec, table, candidate, baseline_version)
    table = table.filter(pc.is_in(table.column(VERSION), value_set=pa.array([candidate, baseline])))
    if labels is not None and join_key is not None:
        if not spec.data_contract.label:
            raise InputError("labels need data_contract.label in the spec: the label's column")
        table = join_labels(table, labels, join_key, spec.data_contract.label)
    is_candidate = pc.equal(table.column(VERSION), candidate).to_numpy(zero_copy_only=False)
    seconds = table.column("logged_at").cast("int64").to_numpy() / 1e6
    cache: dict[str, Observations | str] = {}

    def observations(name: str) -> Observations | str:
        if name not in cache:
            cache[name] = observe(parse_rollout_metric(name), table, spec, candidate)
        return cache[name]

    judgement = judge_observations(
        spec,
        observations,
        candidate=candidate,
        baseline=baseline,
        requests=(int(is_candidate.sum()), int((~is_candidate).sum())),
        elapsed_s=float(seconds.max() - seconds.min()) if len(seconds) else 0.0,
        step=step,
    )
    judgement.skipped_files = log.skipped
    return judgement


def judge_observations(
    spec: HandoffSpec,
    observations: Callable[[str], Observations | str],
    *,
    candidate: str,
    baseline: str,
    requests: tuple[int, int],
    elapsed_s: float,
    step: int | None = None,
) -> Judgement:
    """The verdict from each metric's observations (``observations(metric name)``): what
    ``judge_rollout`` does once the log is read, and what a simulation calls at every look."""
    rollout = spec.rollout
    n_c, n_b = requests
    observed = 100.0 * n_c / max(n_c + n_b, 1)
    index = _step_index(spec, step, observed)
    rules = [_judge_rule(r, observations(r.metric), rollout.alpha) for r in rollout.graduate_when]
    triggers = [evaluate_trigger(t, observations(t.metric)) for t in spec.rollback.triggers]
    with_data = [r for r in rules if r.classification != "no-data"]
    weight = sum(r.weight for r in with_data)
    score = 100.0 * sum(r.weight for r in with_data if not r.failing) / weight if weight else None
    verdict, reasons = _verdict(spec, rules, triggers, score, index, elapsed_s, n_c, n_b)
    steps = rollout.steps
    next_weight = None
    if verdict == "graduate":
        following = None if index is None else index + 1
        last = following is None or following >= len(steps)
        next_weight = 100.0 if following is None or last else steps[following].traffic_percent
    elif verdict == "rollback":
        next_weight = 0.0
    return Judgement(
        verdict,
        reasons,
        candidate,
        baseline,
        None if index is None else index + 1,
        None if index is None else steps[index].traffic_percent,
        observed,
        next_weight,
        elapsed_s,
        {"candidate": n_c, "baseline": n_b},
        score,
        rules,
        triggers,
        rollout.alpha,
    )


def _baseline_version(spec: HandoffSpec, table: Any, candidate: str, given: str | None) -> str:
    tally = pc.value_counts(table.column(VERSION))
    counts = dict(
        zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True)
    )
    found = ", ".join(f"{v} ({n:,} rows)" for v, n in sorted(counts.items()))
    if candidate not in counts:
        raise InputError(
            f"no row of the log was answered by the candidate {candidate} (found {found}): "
            "is the canary weight 0, or is this the bundle the server serves?"
        )
    wanted = given or spec.rollback.previous_version
    if wanted is not None:
        name = wanted.removeprefix(f"{spec.name}-")
        if name in counts and name != candidate:
            return name
        if given is not None or len(counts) < 2:
            raise InputError(
                f"the log has no rows of the baseline {name} (found {found}): a judge needs both "
                "arms; pass --baseline-version if the baseline is another one"
            )
    others = [v for v in counts if v != candidate]
    if not others:
        raise InputError(
            f"the log has only one arm, the candidate (found {found}): a judge compares it with "
            "a baseline, so both must answer (canary weight below 100, or shadow mode)"
        )
    if len(others) > 1:
        raise InputError(
            f"the log holds several versions besides the candidate ({found}): name the baseline "
            "with --baseline-version or rollback.previous_version"
        )
    return others[0]


def _step_index(spec: HandoffSpec, step: int | None, observed: float) -> int | None:
    steps = spec.rollout.steps
    if step is not None:
        if not 1 <= step <= len(steps):
            raise InputError(f"--step {step}: the spec has {len(steps)} rollout step(s)")
        return step - 1
    if not steps:
        return None
    return int(np.argmin([abs(s.traffic_percent - observed) for s in steps]))


def _judge_rule(rule: GraduationRule, obs: Observations | str, alpha: float) -> RuleResult:
    metric = parse_rollout_metric(rule.metric)
    out = RuleResult(rule.metric, rule.goal, rule.critical, rule.weight, rule.describe())
    if isinstance(obs, str):
        out.detail = obs
        return out
    c, b = obs.arm(True), obs.arm(False)
    out.n_candidate, out.n_baseline = len(c), len(b)
    if min(len(c), len(b)) < MIN_OBSERVATIONS:
        out.detail = (
            f"too few observations: {len(c)} candidate, {len(b)} baseline (at least "
            f"{MIN_OBSERVATIONS} each)"
        )
        return out
    direction = rule.direction()
    if metric.kind == "quantile":
        q = metric.quantile or 0.5
        cs, bs = np.sort(c), np.sort(b)
        out.candidate, out.baseline = float(np.quantile(cs, q)), float(np.quantile(bs, q))
        out.effect_kind = "ratio"
        out.effect = out.candidate / out.baseline if out.baseline > 0 else math.inf
        limit = 1 + (rule.relative_tolerance or 0.0)
        out.band = [1 / limit, limit]
        shift = stats.hodges_lehmann(
            *_sample(np.log(np.maximum(c, 1e-9)), np.log(np.maximum(b, 1e-9))), alpha
        )
        kayenta = stats.Interval(math.exp(shift.interval.low), math.exp(shift.interval.high))
        out.p_value = shift.p_value
        sequence = stats.ratio_sequence(
            stats.quantile_sequence(cs, q, alpha / 2), stats.quantile_sequence(bs, q, alpha / 2)
        )
    else:
        out.candidate, out.baseline = float(c.mean()), float(b.mean())
        out.effect = out.candidate - out.baseline
        tolerance = _tolerance(rule, out.baseline)
        out.band = [-tolerance, tolerance]
        if metric.kind == "rate":
            fixed = stats.agresti_caffo(c.sum(), len(c), b.sum(), len(b), alpha)
            variance = stats.smoothed_rate_variance(c.sum(), len(c)) + stats.smoothed_rate_variance(
                b.sum(), len(b)
            )
        else:
            fixed = stats.hodges_lehmann(*_sample(c, b), alpha)
            variance = float(c.var(ddof=1) / len(c) + b.var(ddof=1) / len(b))
        kayenta, out.p_value = fixed.interval, fixed.p_value
        tau = rule.mde if rule.goal == "better" and rule.mde else max(tolerance, 1e-12)
        half = stats.mixture_halfwidth(variance, tau**2, alpha)
        sequence = stats.Interval(out.effect - half, out.effect + half)
    out.interval, out.sequence = kayenta.to_list(), sequence.to_list()
    low, high = out.band
    out.classification = "high" if kayenta.low > high else "low" if kayenta.high < low else "pass"
    bad = {"high"} if direction is False else {"low"} if direction is True else {"high", "low"}
    if rule.goal == "better":
        bad = {"low"} if direction else {"high"}
    out.flagged = out.classification in bad
    out.decision = _decide(rule, direction, sequence, low, high, out.effect_kind)
    out.failing = out.decision == "harmful"
    out.detail = _detail(out)
    return out


def _sample(c: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)

    def cut(x: np.ndarray) -> np.ndarray:
        return x if len(x) <= KAYENTA_SAMPLE else rng.choice(x, KAYENTA_SAMPLE, replace=False)

    return cut(c), cut(b)


def _tolerance(rule: GraduationRule, baseline: float) -> float:
    options = []
    if rule.tolerance is not None:
        options.append(rule.tolerance)
    if rule.relative_tolerance is not None:
        options.append(rule.relative_tolerance * abs(baseline))
    return min(options) if options else 0.0


def _decide(
    rule: GraduationRule,
    direction: bool | None,
    seq: stats.Interval,
    low: float,
    high: float,
    kind: str,
) -> str:
    """proven / harmful / undecided, from the anytime-valid sequence of the effect."""
    neutral = 1.0 if kind == "ratio" else 0.0
    if rule.goal == "better":
        if direction:
            return (
                "proven" if seq.low > neutral else "harmful" if seq.high < neutral else "undecided"
            )
        return "proven" if seq.high < neutral else "harmful" if seq.low > neutral else "undecided"
    if direction is False:
        return "proven" if seq.high <= high else "harmful" if seq.low > high else "undecided"
    if direction is True:
        return "proven" if seq.low >= low else "harmful" if seq.high < low else "undecided"
    if low <= seq.low and seq.high <= high:
        return "proven"
    return "harmful" if seq.low > high or seq.high < low else "undecided"


def _detail(r: RuleResult) -> str:
    assert r.effect is not None and r.sequence is not None and r.band is not None
    if r.effect_kind == "ratio":
        effect = f"ratio {r.effect:.3g} (allowed {r.band[1]:.3g}), anytime interval [{r.sequence[0]:.3g}, {r.sequence[1]:.3g}]"
    else:
        effect = (
            f"difference {r.effect:+.4g} (tolerance ±{r.band[1]:.4g}), anytime interval "
            f"[{r.sequence[0]:+.4g}, {r.sequence[1]:+.4g}]"
        )
    return (
        f"candidate {r.candidate:.4g} vs baseline {r.baseline:.4g} "
        f"(n {r.n_candidate:,} / {r.n_baseline:,}): {effect}; Kayenta {r.classification}"
    )


def _verdict(
    spec: HandoffSpec,
    rules: list[RuleResult],
    triggers: list[TriggerResult],
    score: float | None,
    index: int | None,
    elapsed: float,
    n_c: int,
    n_b: int,
) -> tuple[Verdict, list[str]]:
    rollout = spec.rollout
    back = [f"trigger '{t.name}' ({t.rule}) {t.detail}" for t in triggers if t.fired]
    back += [
        f"critical rule failed: {r.rule}: {r.detail}" for r in rules if r.critical and r.failing
    ]
    if score is not None and score < rollout.marginal_score:
        failing = ", ".join(r.metric for r in rules if r.failing)
        back.append(
            f"canary score {score:.0f} is under marginal_score {rollout.marginal_score:g} "
            f"(failing: {failing})"
        )
    if back:
        return "rollback", back
    waits: list[str] = []
    for r in rules:
        if r.decision == "no-data":
            waits.append(f"{r.metric}: no data yet ({r.detail})")
        elif r.decision != "proven":
            waits.append(f"{r.metric}: not yet proven ({r.detail})")
        elif r.flagged:
            waits.append(f"{r.metric}: the one-look (Kayenta) view flags it {r.classification}")
    if score is not None and score < rollout.pass_score:
        waits.append(f"canary score {score:.0f} is under pass_score {rollout.pass_score:g}")
    if index is not None:
        step = rollout.steps[index]
        need = parse_duration(step.duration).total_seconds()
        if elapsed < need:
            waits.append(
                f"step {index + 1} ({step.traffic_percent:g}%) runs at least {step.duration}; "
                f"the log covers {elapsed / 3600:.1f} h"
            )
        if step.min_samples is not None and min(n_c, n_b) < step.min_samples:
            waits.append(
                f"step {index + 1} needs {step.min_samples:,} requests per arm; the log has "
                f"{n_c:,} candidate and {n_b:,} baseline"
            )
    if waits:
        return "continue", waits
    proven = ", ".join(r.metric for r in rules) or "no rules"
    shown = "" if score is None else f"canary score {score:.0f}; "
    return "graduate", [f"{shown}every rule proven within tolerance ({proven}); no trigger fired"]
