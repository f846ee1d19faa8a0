"""Pydantic models of ``handoff.yaml``: one definition drives validation, JSON Schema and docs.

Human-only fields may hold a string starting with ``TODO``; they parse, and the verify checklist
reports them as missing. What ``pack`` computes (where the model lands, digests, git commit, the
captured environment, leakage findings) is not part of the spec: the bundle keeps it in
``reports/`` and ``env/``, so the frozen spec is exactly what its authors wrote.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from mlhandoff.spec.durations import Duration, Window, parse_duration
from mlhandoff.spec.rollout_rules import parse_rollout_metric
from mlhandoff.spec.tasks import Task

SPEC_VERSION = 1

FlavorName = Literal["sklearn", "lightgbm", "xgboost", "onnx", "python_function"]
FieldType = Literal["int", "float", "bool", "string", "category", "timestamp", "date", "array"]
OutputType = Literal["float", "int", "bool", "string"]
Comparison = Literal[">=", ">", "<=", "<"]

Text = Annotated[str, Field(min_length=1)]


def _rollout_metric(name: str) -> str:
    parse_rollout_metric(name)
    return name


#: A metric a graduation rule or a rollback trigger names, checked at load.
RolloutMetric = Annotated[str, Field(min_length=1), AfterValidator(_rollout_metric)]


def is_todo(value: object) -> bool:
    """True for an unfilled human field: None, empty, or a string starting with TODO."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip() or value.strip().upper().startswith("TODO")
    if isinstance(value, list | dict):
        return not value or all(
            is_todo(v) for v in (value.values() if isinstance(value, dict) else value)
        )
    return False


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class Person(_Section):
    name: Text
    email: str | None = None
    team: str | None = None


class OnCall(_Section):
    rotation: Text = Field(description="Pager rotation or schedule that answers alerts.")
    escalation: list[str] = Field(default_factory=list, description="Who to call next, in order.")
    channel: str | None = Field(default=None, description="Chat channel for incidents.")


class Owners(_Section):
    data_science: Person | None = None
    engineering: Person | None = None
    product: Person | None = None
    on_call: OnCall | None = None


class ModelSection(_Section):
    path: Text = Field(description="Model file (or code directory for python_function).")
    flavor: FlavorName | None = Field(default=None, description="Inferred from the file if unset.")
    task: Task
    version_tag: Text = Field(description="The version this artifact is released as, e.g. v1.2.0.")
    entrypoint: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function, for the python_function flavor.",
    )
    threshold: float = Field(default=0.5, ge=0, le=1, description="Decision threshold on score.")
    features: list[str] | None = Field(
        default=None, description="Model input order; defaults to the data contract's fields."
    )


class DataFile(_Section):
    path: Text
    role: Literal["train", "eval", "test", "other"] = "train"
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Expected digest: pack refuses the file if it differs.",
    )


class Training(_Section):
    code_path: str | None = Field(default=None, description="Training code, copied into code/.")
    command: str | None = Field(default=None, description="Exact command that trains the model.")
    seed: int | None = None
    data: list[DataFile] = Field(default_factory=list)


class Environment(_Section):
    packages: list[str] = Field(
        default_factory=list, description="Extra distributions to pin besides the flavor's own."
    )


class UnseenBucket(_Section):
    bucket: Text = Field(description="Domain value that unseen categories are mapped to.")


class FieldSpec(_Section):
    type: FieldType
    description: str | None = None
    unit: str | None = None
    min: int | float | None = Field(default=None, description="Lowest value (arrays: per element).")
    max: int | float | None = Field(
        default=None, description="Highest value (arrays: per element)."
    )
    min_exclusive: bool = Field(default=False, description="min itself is out of range.")
    max_exclusive: bool = Field(default=False, description="max itself is out of range.")
    nullable: bool = False
    max_null_fraction: float | None = Field(default=None, ge=0, le=1)
    domain: list[str | int] | None = Field(default=None, description="Allowed categories.")
    unseen: Literal["reject", "allow"] | UnseenBucket = Field(
        default="reject",
        description="Values outside the domain: reject, allow (counted), or {bucket: <value>}.",
    )
    pattern: str | None = Field(
        default=None, description="Regular expression (RE2) that the whole string must match."
    )
    min_length: int | None = Field(default=None, ge=0, description="Fewest characters.")
    max_length: int | None = Field(default=None, ge=0, description="Most characters.")
    length: int | None = Field(default=None, ge=1, description="Values per row of an array field.")
    timezone: str | None = Field(default=None, description="Required timezone of timestamps.")
    id: bool = Field(default=False, description="Identifier: unique within a batch, not a feature.")
    pii: bool = False
    source: str | None = Field(default=None, description="Where the field comes from.")
    refresh: str | None = Field(default=None, description="How often the source refreshes.")
    leakage_risk: str | None = None
    drift_sensitive: bool = False


class Split(_Section):
    kind: Literal["time", "group", "random"] = Field(
        description="How evaluation data was split off from training data."
    )
    column: str | None = Field(
        default=None, description="time: the timestamp field; group: the grouping field."
    )


class LeakageFinding(_Section):
    check: Literal["single_feature", "shared_ids", "shared_rows", "shared_groups", "time_split"]
    field: str | None = None
    score: float | None = Field(default=None, description="ROC AUC, correlation or fraction.")
    detail: Text


class LeakageRecord(_Section):
    """What pack's leakage checks ran and found (``reports/leakage.json``)."""

    checked: list[str] = Field(default_factory=list, description="Which checks ran, on what.")
    findings: list[LeakageFinding] = Field(default_factory=list)


class DataContract(_Section):
    label: str | None = Field(default=None, description="Label column in training/eval data.")
    fields: dict[str, FieldSpec] = Field(min_length=1)
    split: Split | None = Field(default=None, description="How training and eval data split.")

    def features(self) -> list[str]:
        return [name for name, f in self.fields.items() if not f.id]


class OutputField(_Section):
    type: OutputType
    source: str | None = Field(default=None, description="Standard output it comes from.")
    description: str | None = None
    min: float | None = None
    max: float | None = None


class OutputContract(_Section):
    fields: dict[str, OutputField] = Field(min_length=1)


class Golden(_Section):
    sample: str | None = Field(default=None, description="Sample data the golden set is cut from.")
    rows: int = Field(default=100, ge=1, le=100_000)
    rtol: float = Field(default=1e-6, ge=0)
    atol: float = Field(default=1e-9, ge=0)


class LatencyBudget(_Section):
    p50_ms: float | None = Field(default=None, gt=0)
    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)


class Api(_Section):
    examples: list[dict[str, Any]] = Field(default_factory=list, description="Request records.")
    latency_budget: LatencyBudget | None = None
    throughput_rps: float | None = Field(default=None, gt=0)
    max_batch_size: int = Field(default=1000, ge=1)
    rate_limit_rps: float | None = Field(default=None, gt=0, description="Per client, per second.")
    idempotency: bool = True
    request_id_header: str = "X-Request-ID"
    auth: Literal["none", "bearer"] = Field(
        default="none", description="bearer: the server requires the token given at `serve`."
    )
    timeout_ms: float = Field(
        default=1000, gt=0, description="Model time budget; past it: fallback model or 504."
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Larger bodies get 413.")
    abstain_below: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Classification: confidence under this returns an explicit abstain.",
    )


class Serving(_Section):
    compile: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="auto: serve a compiled predictor when pack proves it answers like the "
        "model; required: pack fails unless it does; off: always serve the model itself.",
    )


class Criterion(_Section):
    """An acceptance criterion: an absolute bound and/or a required gain over the baseline.

    The MLflow ``MetricThreshold`` words mean the same here: ``threshold``,
    ``min_absolute_change``, ``min_relative_change``, ``greater_is_better``.
    """

    metric: Text = Field(description="e.g. roc_auc, recall@precision0.9, ndcg@10, rmse.")
    op: Comparison | None = Field(
        default=None, description="How value compares with threshold; default from direction."
    )
    threshold: float | None = Field(default=None, description="Absolute bound on the metric.")
    min_absolute_change: float | None = Field(
        default=None, description="Required gain over the baseline, in metric units."
    )
    min_relative_change: float | None = Field(
        default=None, description="Required gain over the baseline, as a fraction of it."
    )
    greater_is_better: bool | None = Field(
        default=None, description="Direction; defaults to the metric's natural one."
    )
    primary: bool = Field(default=True, description="A failed primary criterion fails evaluate.")
    description: str | None = None


class Guardrail(_Section):
    metric: Text = Field(
        description="A metric checked in every slice of `by`, or a fairness metric across them."
    )
    by: str | None = Field(default=None, description="Slice column.")
    op: Comparison | None = Field(default=None, description="Default from the metric's direction.")
    threshold: float | None = Field(
        default=None, description="Required unless the metric has a conventional bound."
    )
    greater_is_better: bool | None = Field(
        default=None, description="Direction; defaults to the metric's natural one (as criteria)."
    )
    min_slice_size: int | None = Field(
        default=None, ge=1, description="Overrides acceptance.min_slice_size."
    )
    description: str | None = None


class Bootstrap(_Section):
    resamples: int = Field(default=1000, ge=0, le=100_000, description="0 turns intervals off.")
    seed: int = Field(default=0, description="Seed of the resample indices.")
    confidence: float = Field(default=0.95, gt=0, lt=1)


class Upgrade(_Section):
    """The go/no-go rule ``mlhandoff diff OLD NEW`` applies to a new version (this spec's)."""

    primary: Literal["not_worse", "better"] = Field(
        default="not_worse",
        description="not_worse: no primary metric significantly worse; better: each one "
        "significantly better.",
    )
    max_latency_ratio: float | None = Field(
        default=None, gt=0, description="Largest allowed new/old p95 single-row latency."
    )
    allow_breaking_contract: bool = Field(
        default=False, description="Accept a data-contract change that breaks old callers."
    )


class Acceptance(_Section):
    criteria: list[Criterion] = Field(default_factory=list)
    guardrails: list[Guardrail] = Field(default_factory=list)
    baseline: str | None = Field(default=None, description="Bundle to compare against.")
    data: str | None = Field(
        default=None,
        description="Labelled evaluation data; pack measures the criteria on a sample of it.",
    )
    max_rows: int = Field(
        default=20_000, ge=1, description="Rows of `data` kept in the bundle (seeded sample)."
    )
    query: str | None = Field(default=None, description="Query-group column (ranking).")
    bootstrap: Bootstrap = Field(default_factory=Bootstrap)
    min_slice_size: int = Field(
        default=30, ge=1, description="Smaller slices are reported inconclusive, not judged."
    )
    tolerance: float = Field(
        default=1e-9, ge=0, description="Largest metric difference verify and repro accept."
    )
    upgrade: Upgrade = Field(default_factory=Upgrade)


_ALERT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_OLD_DRIFT = re.compile(
    r"^\s*(psi|kl|js|ks|chi2|wasserstein)\s*\(\s*([\w.]+)\s*\)\s*>\s*([0-9.]+)\s*"
    r"(?:over|for)\s*(\w+)\s*$",
    re.IGNORECASE,
)


def old_condition_message(condition: str) -> str:
    """Why a free-text ``condition`` no longer parses, with the rule that says it now."""
    match = _OLD_DRIFT.match(condition)
    if match:
        stat, field, threshold, window = match.groups()
        rule = (
            f"monitoring.drift: - {{field: {field}, statistic: {stat.lower()}, "
            f"threshold: {threshold}, window: {window}, for: 1h, alert: <this alert's name>}}"
        )
    else:
        rule = (
            "monitoring.drift: - {field: amount_eur, statistic: psi, threshold: 0.2, window: 1d, "
            "for: 1h, alert: InputDrift} (also outputs, service, performance, slos)"
        )
    return (
        f"free-text conditions are not evaluated ({condition!r}): remove 'condition' and write "
        f"the rule that raises this alert, e.g. {rule}; see docs/handoff.example.yaml"
    )


Statistic = Literal["psi", "kl", "js", "ks", "chi2", "wasserstein", "null_rate", "unseen_rate"]


class Alert(_Section):
    """Who hears about a breach and what they do: rules name an alert (``alert: InputDrift``)."""

    name: str = Field(
        json_schema_extra={"pattern": _ALERT_NAME.pattern},
        description="The Prometheus alert name: letters, digits and _, e.g. InputDrift.",
    )
    severity: Literal["page", "ticket", "info"] = "ticket"
    route: str | None = Field(default=None, description="Pager service or channel it goes to.")
    summary: str | None = Field(default=None, description="What it means, in one line.")
    runbook: str | None = Field(
        default=None, description="What the on-call engineer does: rendered into RUNBOOK.md."
    )
    condition: SkipJsonSchema[str | None] = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _prometheus_name(cls, value: str) -> str:
        if not _ALERT_NAME.match(value):
            raise ValueError(
                f"{value!r} cannot name a Prometheus alert: use letters, digits and _, "
                "starting with a letter, e.g. InputDrift"
            )
        return value

    @field_validator("condition")
    @classmethod
    def _free_text_is_gone(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(old_condition_message(value))
        return None


class _Rule(_Section):
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, validate_by_name=True, serialize_by_alias=True
    )

    window: Window = Field(default="1h", description="The rule's value is measured over this.")
    for_: Window = Field(
        default="0m",
        alias="for",
        description="How long the breach must last before the alert fires (Prometheus for:).",
    )
    alert: Text = Field(description="The alert (monitoring.alerts[].name) a breach raises.")


class DriftRule(_Rule):
    """An input field's distribution against the reference profile packed in the bundle."""

    field: Text = Field(description="An input field of data_contract.")
    statistic: Statistic = Field(
        default="psi",
        description="psi, kl, js, wasserstein, null_rate, unseen_rate (distances: breach above "
        "threshold) or ks, chi2 (p-values: breach below threshold).",
    )
    threshold: float | None = Field(
        default=None, ge=0, description="Default by statistic (psi 0.2, js 0.1, ks 0.01, ...)."
    )
    window: Window = Field(default="1d", description="The distribution is measured over this.")
    min_rows: int = Field(
        default=100, ge=1, description="Windows with fewer rows are reported, not judged."
    )


class OutputRule(DriftRule):
    """A model output's distribution, or the share of positive predictions within a band."""

    field: Text = Field(description="An output of the output contract (score, label, ...).")
    statistic: Statistic | Literal["positive_rate"] = Field(  # type: ignore[assignment]
        default="psi", description="A drift statistic, or positive_rate with min and/or max."
    )
    min: float | None = Field(default=None, ge=0, le=1, description="positive_rate: lowest share.")
    max: float | None = Field(default=None, ge=0, le=1, description="positive_rate: highest share.")

    @model_validator(mode="after")
    def _band(self) -> OutputRule:
        band = self.min is not None or self.max is not None
        if self.statistic == "positive_rate":
            if not band:
                raise ValueError("positive_rate needs min and/or max: the band the share stays in")
            if self.threshold is not None:
                raise ValueError("positive_rate takes min/max, not threshold")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        elif band:
            raise ValueError(f"min/max apply to positive_rate; {self.statistic} takes threshold")
        return self


class ServiceRule(_Rule):
    """What the server's own metrics show: errors, contract failures, latency."""

    metric: Literal[
        "error_rate", "contract_failure_rate", "latency_p50", "latency_p95", "latency_p99"
    ] = Field(
        description="error_rate: share of 5xx answers; contract_failure_rate: share of "
        "requests refused by the data contract (422; in batch, rows failing it); "
        "latency_pNN: that percentile in ms."
    )
    threshold: float | None = Field(
        default=None,
        gt=0,
        description="A share for the rates; ms for latency (default: api.latency_budget).",
    )
    window: Window = Field(default="5m", description="The rate is measured over this.")


class PerformanceRule(_Rule):
    """Binary classification: a metric at model.threshold over a window, from labels joined
    late, or estimated from the scores alone (``estimated: true``, for calibrated scores)."""

    metric: Literal["roc_auc", "precision", "recall"]
    threshold: float = Field(ge=0, le=1, description="The metric must stay at or above this.")
    estimated: bool = Field(
        default=False,
        description="Judge the confidence-based estimate (no labels needed; assumes calibration).",
    )
    window: Window = Field(default="1d", description="The metric is measured over this.")
    min_rows: int = Field(
        default=100, ge=1, description="Windows with fewer labelled rows are not judged."
    )


class Slo(_Section):
    """A service level objective: burn-rate alerts page when its error budget goes too fast."""

    name: Text
    kind: Literal["availability", "latency"] = Field(
        description="availability: answers without a 5xx; latency: answers under latency_ms."
    )
    target: float = Field(gt=0, lt=1, description="Share of good requests, e.g. 0.999.")
    window: Window = Field(default="30d", description="The period the budget is spent over.")
    latency_ms: float | None = Field(
        default=None, gt=0, description="latency: the bound (one of the server's buckets)."
    )
    objective: str | None = Field(default=None, description="The promise, in words.")
    alert: Text = Field(description="The alert the burn-rate rules raise.")


class Monitoring(_Section):
    slos: list[Slo] = Field(default_factory=list)
    drift: list[DriftRule] = Field(default_factory=list)
    outputs: list[OutputRule] = Field(default_factory=list)
    service: list[ServiceRule] = Field(default_factory=list)
    performance: list[PerformanceRule] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)

    def rules(self) -> list[DriftRule | OutputRule | ServiceRule | PerformanceRule]:
        return [*self.drift, *self.outputs, *self.service, *self.performance]


class RolloutStep(_Section):
    traffic_percent: float = Field(gt=0, le=100, description="Share of traffic the candidate gets.")
    duration: Duration = Field(
        description="Shortest time at this share before the judge may graduate the step (3d)."
    )
    min_samples: int | None = Field(
        default=None, ge=1, description="Fewest requests per arm before the step may graduate."
    )


def _no_free_text(example: str) -> Callable[[Any], Any]:
    """Free-text rules (the first spec format) are refused with the new form to write."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"free text is no longer read here; write a rule, e.g. {example}")
        return value

    return check


class GraduationRule(_Section):
    """A metric the canary judge compares between the candidate and the baseline.

    ``goal: not_worse`` passes when the candidate is proven no worse than the tolerance allows
    (both ways for a metric without a direction: a band); ``goal: better`` needs a proven lift.
    """

    metric: RolloutMetric = Field(
        description="error_rate, latency_p95, positive_rate, recall, precision, accuracy, mae, "
        "mean(output.<name>) or mean(input.<name>)."
    )
    goal: Literal["not_worse", "better"] = Field(
        default="not_worse", description="not_worse: within tolerance; better: a proven lift."
    )
    greater_is_better: bool | None = Field(
        default=None,
        description="Direction of a metric that has none of its own (mean(...)); unset: a band.",
    )
    tolerance: float | None = Field(
        default=None, ge=0, description="Largest change the worse way that passes (metric units)."
    )
    relative_tolerance: float | None = Field(
        default=None,
        ge=0,
        description="The same as a share of the baseline's value; latency takes only this "
        "(0.5: the p95 ratio may reach 1.5).",
    )
    mde: float | None = Field(
        default=None,
        gt=0,
        description="Smallest lift worth detecting (goal better), in metric units; the plan "
        "sizes samples for it (default: the tolerance).",
    )
    expected: float | None = Field(
        default=None, description="The baseline's expected value, for the plan (rates: 0.012)."
    )
    sd: float | None = Field(
        default=None,
        gt=0,
        description="Spread per request, for the plan: sd of the values (mean(...), mae), of "
        "log latency (latency_p<NN>).",
    )
    critical: bool = Field(default=False, description="Failing it rolls back, whatever the score.")
    weight: float = Field(default=1.0, gt=0, description="Share of the canary score.")
    description: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> GraduationRule:
        metric = parse_rollout_metric(self.metric)
        own = metric.greater_is_better
        if own is not None and self.greater_is_better not in (None, own):
            raise ValueError(
                f"{metric.name}: {'higher' if own else 'lower'} is better; "
                f"greater_is_better: {str(self.greater_is_better).lower()} contradicts it"
            )
        if metric.kind == "quantile" and self.tolerance is not None:
            raise ValueError(
                f"{metric.name} is judged as a ratio: use relative_tolerance (0.5: at most 1.5x)"
            )
        if self.goal == "better":
            if self.direction() is None:
                raise ValueError(
                    f"goal better needs a direction: {metric.name} has none, set greater_is_better"
                )
            if self.mde is None:
                raise ValueError(
                    "a 'better' rule names mde: the smallest lift worth detecting, in metric units"
                )
        elif self.tolerance is None and self.relative_tolerance is None:
            raise ValueError(
                "a not_worse rule needs tolerance (metric units) or relative_tolerance (a share "
                "of the baseline): how much worse still passes"
            )
        return self

    def direction(self) -> bool | None:
        """True: higher is better; False: lower is better; None: a change either way counts."""
        own = parse_rollout_metric(self.metric).greater_is_better
        return own if own is not None else self.greater_is_better

    def describe(self) -> str:
        """The rule in words: ``latency_p95 at most 1.5x the baseline's (critical)``."""
        metric = parse_rollout_metric(self.metric)
        if self.goal == "better":
            text = f"{self.metric} {'higher' if self.direction() else 'lower'} than the baseline's"
        elif metric.kind == "quantile":
            text = f"{self.metric} at most {1 + (self.relative_tolerance or 0):g}x the baseline's"
        else:
            parts = []
            if self.tolerance is not None:
                parts.append(f"{self.tolerance:g}")
            if self.relative_tolerance is not None:
                parts.append(f"{self.relative_tolerance:.0%}")
            way = {True: "below", False: "above", None: "either side of"}[self.direction()]
            text = f"{self.metric} no more than {' and '.join(parts)} {way} the baseline's"
        return text + (" (critical)" if self.critical else "")


class Rollout(_Section):
    strategy: Literal["canary", "shadow", "blue_green", "all_at_once"] = "canary"
    sticky_key: str | None = Field(
        default=None,
        description="Data-contract field whose hash sends a subject to one version every time.",
    )
    steps: list[RolloutStep] = Field(default_factory=list)
    graduate_when: list[
        Annotated[
            GraduationRule,
            BeforeValidator(
                _no_free_text("{metric: error_rate, tolerance: 0.002, critical: true}")
            ),
        ]
    ] = Field(default_factory=list, description="Every rule must pass for a step to graduate.")
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="Largest false-graduation rate, however often the judge looks.",
    )
    power: float = Field(default=0.8, gt=0.5, lt=1, description="For the plan's sample sizes.")
    pass_score: float = Field(
        default=95,
        ge=0,
        le=100,
        description="Canary score (weighted % of rules not failing) needed to graduate.",
    )
    marginal_score: float = Field(
        default=75, ge=0, le=100, description="Below this canary score the judge rolls back."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Rollout:
        shares = [s.traffic_percent for s in self.steps]
        if shares != sorted(shares):
            raise ValueError(f"steps' traffic_percent must not decrease (got {shares})")
        if self.marginal_score > self.pass_score:
            raise ValueError(
                f"marginal_score ({self.marginal_score:g}) exceeds pass_score ({self.pass_score:g})"
            )
        return self


class Trigger(_Section):
    """A condition that rolls the candidate back at once: live (alert rules, Argo analysis) and
    in the judge. The same shape as a monitoring alert: a value over a window, for a while."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    name: Text
    metric: RolloutMetric = Field(description="A rollout metric (as in rollout.graduate_when).")
    op: Comparison | None = Field(
        default=None, description="How the value compares with threshold to fire; default: worse."
    )
    threshold: float = Field(description="The candidate's value, or its ratio to the baseline.")
    versus: Literal["baseline"] | None = Field(
        default=None, description="baseline: threshold is the candidate/baseline ratio."
    )
    window: Duration = Field(default="10m", description="The value is computed over this window.")
    for_: Duration = Field(
        default="0s", alias="for", description="The condition must hold this long to fire."
    )
    min_samples: int = Field(
        default=100, ge=1, description="Windows with fewer candidate requests do not count."
    )
    description: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Trigger:
        metric = parse_rollout_metric(self.metric)
        if self.op is None and metric.greater_is_better is None:
            raise ValueError(f"{metric.name} has no worse direction: set op ('>' or '<')")
        if self.versus == "baseline" and self.threshold <= 0:
            raise ValueError("a ratio to the baseline is positive")
        return self

    def comparison(self) -> str:
        """The op, or the worse direction of the metric."""
        if self.op is not None:
            return self.op
        return "<" if parse_rollout_metric(self.metric).greater_is_better else ">"

    def describe(self) -> str:
        """``error_rate > 0.01 over 10m for 10m``; ratios read ``positive_rate / baseline > 2``."""
        value = f"{self.metric} / baseline" if self.versus else self.metric
        held = f" for {self.for_}" if parse_duration(self.for_).total_seconds() else ""
        return f"{value} {self.comparison()} {self.threshold:g} over {self.window}{held}"


class Rollback(_Section):
    plan: str | None = None
    triggers: list[
        Annotated[
            Trigger,
            BeforeValidator(
                _no_free_text(
                    "{name: errors, metric: error_rate, op: '>', threshold: 0.01, window: 10m, "
                    "for: 10m}"
                )
            ),
        ]
    ] = Field(default_factory=list, description="Any one firing rolls the candidate back.")
    previous_version: str | None = Field(
        default=None,
        description="The baseline's version (or <name>-<version>): its rows in the prediction "
        "log and its series in the metrics carry it.",
    )


class ModelCard(_Section):
    intended_use: str | None = None
    out_of_scope: list[str] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)
    known_biases: list[str] = Field(default_factory=list)
    mitigations: list[str] = Field(default_factory=list)
    training_data: str | None = None
    evaluation_data: str | None = None
    ethical_considerations: str | None = None


PiiRule = Literal["email", "phone", "card_number", "iban", "ip_address"]


class PiiAcknowledgement(_Section):
    """Personal data pack found in a field that is not PII, and why that is acceptable."""

    field: Text
    rule: PiiRule | None = Field(default=None, description="The rule it answers; any when unset.")
    reason: Text = Field(description="Why the bundle may carry it (e.g. synthetic test data).")


class Privacy(_Section):
    pii_fields: list[str] = Field(
        default_factory=list,
        description="PII fields; those the model does not use are dropped from golden/eval data.",
    )
    retention: str | None = Field(default=None, description="How long each kind of data is kept.")
    log_retention: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]*[hdw]$",
        description="Prediction-log files older than this are deleted, e.g. 30d (h, d, w).",
    )
    access_controls: str | None = Field(
        default=None, description="Who may read the data and logs, and how that is enforced."
    )
    data_owner: str | None = Field(
        default=None, description="Who answers for the data (a person or team)."
    )
    acknowledged: list[PiiAcknowledgement] = Field(
        default_factory=list,
        description="Personal data pack found in fields that are not PII, with a reason.",
    )
    notes: str | None = None


Role = Literal["pm", "ds", "eng"]
#: The sign-off roles, in the order the checklist names them.
ROLES: tuple[Role, ...] = ("pm", "ds", "eng")


class Security(_Section):
    trusted_types: list[str] = Field(
        default_factory=list,
        description="Types the model file may construct beyond the built-in allowlist (reviewed).",
    )
    notes: str | None = None
    require_signature: bool = Field(
        default=False,
        description="verify fails unless signatures/model.sig verifies with a key you give it.",
    )
    keyring: str | None = Field(
        default=None,
        description="Directory of public keys (*.pub) allowed to sign off; copied into keys/.",
    )
    signoff_roles: list[Role] = Field(
        default_factory=lambda: list(ROLES),
        description="Roles whose signed sign-off verify requires (mlhandoff signoff).",
    )


class FailureMode(_Section):
    symptom: Text
    action: Text


class Runbook(_Section):
    dashboards: list[str] = Field(default_factory=list)
    failure_modes: list[FailureMode] = Field(default_factory=list)
    notes: str | None = None


class SignOff(_Section):
    role: Role
    name: Text
    date: dt.date


class HandoffSpec(_Section):
    """The whole handoff: ``handoff.yaml``."""

    spec_version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Slug used in bundle names.")
    version: Text
    purpose: str | None = None
    owners: Owners = Field(default_factory=Owners)
    model: ModelSection
    training: Training = Field(default_factory=Training)
    environment: Environment = Field(default_factory=Environment)
    data_contract: DataContract
    output_contract: OutputContract | None = None
    golden: Golden = Field(default_factory=Golden)
    api: Api = Field(default_factory=Api)
    serving: Serving = Field(default_factory=Serving)
    acceptance: Acceptance = Field(default_factory=Acceptance)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    rollout: Rollout = Field(default_factory=Rollout)
    rollback: Rollback = Field(default_factory=Rollback)
    model_card: ModelCard = Field(default_factory=ModelCard)
    privacy: Privacy = Field(default_factory=Privacy)
    security: Security = Field(default_factory=Security)
    runbook: Runbook = Field(default_factory=Runbook)
    signoffs: list[SignOff] = Field(default_factory=list)

    def features(self) -> list[str]:
        return list(self.model.features or self.data_contract.features())

    def outputs(self, label_type: OutputType | None = None) -> OutputContract:
        """The output contract, or the task's standard outputs when the spec names none.

        ``label_type`` is the type of the model's classes (a bundle knows it from its pack
        record): the standard ``label`` output then keeps the type the training labels had.
        """
        return self.output_contract or default_output_contract(self.model.task, label_type)


def default_output_contract(task: Task, label_type: OutputType | None = None) -> OutputContract:
    probability = {"type": "float", "min": 0.0, "max": 1.0}
    by_task: dict[str, dict[str, dict[str, Any]]] = {
        "binary_classification": {
            "score": {**probability, "description": "Probability of the positive class."},
            "label": {
                "type": label_type or "int",
                "description": "Predicted class at model.threshold.",
            },
        },
        "multiclass_classification": {
            "label": {"type": label_type or "string", "description": "Predicted class."},
            "confidence": {**probability, "description": "Probability of the predicted class."},
        },
        "regression": {"prediction": {"type": "float", "description": "Predicted value."}},
        "ranking": {"score": {"type": "float", "description": "Relevance score."}},
    }
    return OutputContract.model_validate({"fields": by_task[task]})
