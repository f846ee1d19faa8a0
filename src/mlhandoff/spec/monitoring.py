"""The monitoring vocabulary every enforcer shares, and the checks that tie rules to the spec.

Which statistic fits which field, which way each one breaches and its conventional threshold
are decided here once: the spec loader checks rules with it (:func:`monitoring_issues`),
``mlhandoff monitor`` and the server judge windows with it, and the rendered Prometheus rules
compare in the direction it gives.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from mlhandoff.spec.durations import duration_seconds
from mlhandoff.spec.models import (
    DriftRule,
    FieldSpec,
    HandoffSpec,
    OutputField,
    OutputRule,
    ServiceRule,
)

Loc = tuple[str | int, ...]
#: How a field is profiled: quantile bins, category counts, or its null share only.
FieldKind = Literal["numeric", "categorical", "other"]
Breach = Literal["above", "below"]


@dataclass(frozen=True)
class StatisticInfo:
    kinds: frozenset[FieldKind]
    #: "above": a distance, breached above the threshold; "below": a p-value, breached below.
    breach: Breach
    default_threshold: float
    meaning: str


_BINNED: frozenset[FieldKind] = frozenset({"numeric", "categorical"})
_ALL: frozenset[FieldKind] = frozenset({"numeric", "categorical", "other"})

STATISTICS: dict[str, StatisticInfo] = {
    "psi": StatisticInfo(_BINNED, "above", 0.2, "population stability index"),
    "kl": StatisticInfo(_BINNED, "above", 0.1, "KL divergence of current from reference, nats"),
    "js": StatisticInfo(_BINNED, "above", 0.1, "Jensen-Shannon distance, base 2, in [0, 1]"),
    "ks": StatisticInfo(
        frozenset({"numeric"}), "below", 0.01, "Kolmogorov-Smirnov p-value on the bins"
    ),
    "chi2": StatisticInfo(_BINNED, "below", 0.01, "chi-square p-value, current vs reference"),
    "wasserstein": StatisticInfo(
        frozenset({"numeric"}), "above", 0.1, "Wasserstein-1 distance / reference std"
    ),
    "null_rate": StatisticInfo(_ALL, "above", 0.05, "null share now minus in the reference"),
    "unseen_rate": StatisticInfo(
        frozenset({"categorical"}), "above", 0.01, "share of values outside the reference's"
    ),
}

#: The server's request-latency histogram buckets (serve/metrics.py), in ms: a latency SLO
#: counts the requests under its bound, so the bound must be one of them.
# fmt: off
LATENCY_BUCKETS_MS = (1, 2.5, 5, 7.5, 10, 25, 50, 75, 100, 250, 500, 1000, 2500)
# fmt: on
#: The longest burn-rate window; an SLO's budget window must be longer.
LONGEST_BURN_WINDOW_S = 6 * 3600


def field_kind(field: FieldSpec | OutputField) -> FieldKind:
    """numeric (quantile bins), categorical (counts per category + unseen) or other."""
    if isinstance(field, FieldSpec):
        if field.id or field.type in ("timestamp", "date", "array"):
            return "other"
        if field.type in ("int", "float") and not field.domain:
            return "numeric"
        return "categorical"
    return "numeric" if field.type == "float" else "categorical"


def threshold_of(rule: DriftRule) -> float:
    """The rule's threshold, or its statistic's conventional one (positive_rate: none)."""
    if rule.threshold is not None:
        return rule.threshold
    info = STATISTICS.get(rule.statistic)
    return info.default_threshold if info else float("nan")


def breached(statistic: str, value: float, threshold: float) -> bool:
    return value < threshold if STATISTICS[statistic].breach == "below" else value > threshold


def service_threshold(rule: ServiceRule, spec: HandoffSpec) -> float | None:
    """A share for the rates; ms for latency (the rule's, else ``api.latency_budget``)."""
    if rule.threshold is not None or not rule.metric.startswith("latency_"):
        return rule.threshold
    budget = spec.api.latency_budget
    key = rule.metric.removeprefix("latency_") + "_ms"
    return getattr(budget, key) if budget is not None else None


def slo_latency_ms(spec: HandoffSpec, latency_ms: float | None) -> float | None:
    """A latency SLO's bound: its own, else ``api.latency_budget.p99_ms``."""
    if latency_ms is not None:
        return latency_ms
    budget = spec.api.latency_budget
    return budget.p99_ms if budget is not None else None


def label_output(spec: HandoffSpec) -> str | None:
    """The output holding the predicted class of a binary classifier (source ``label``)."""
    if spec.model.task != "binary_classification":
        return None
    for name, out in spec.outputs().fields.items():
        if (out.source or name) == "label":
            return name
    return None


def score_output(spec: HandoffSpec) -> str | None:
    """The output holding a binary classifier's probability (source ``score``)."""
    if spec.model.task != "binary_classification":
        return None
    for name, out in spec.outputs().fields.items():
        if (out.source or name) == "score":
            return name
    return None


def monitoring_issues(spec: HandoffSpec) -> Iterator[tuple[Loc, str]]:
    """Every rule names a field that exists, a statistic that fits its type and an alert that
    is defined; every alert is raised by some rule. Each problem with the path to fix."""
    m = spec.monitoring
    at: Loc = ("monitoring",)
    names = [a.name for a in m.alerts]
    for i, name in enumerate(names):
        if name in names[:i]:
            yield ((*at, "alerts", i, "name"), f"alert '{name}' is defined twice")
    used: set[str] = set()
    sections: list[tuple[str, list]] = [
        ("slos", m.slos),
        ("drift", m.drift),
        ("outputs", m.outputs),
        ("service", m.service),
        ("performance", m.performance),
    ]
    for section, rules in sections:
        for i, rule in enumerate(rules):
            used.add(rule.alert)
            if rule.alert not in names:
                yield ((*at, section, i, "alert"), _unknown(rule.alert, names, "monitoring.alerts"))
    for i, name in enumerate(names):
        if name not in used and name not in names[:i]:
            yield (
                (*at, "alerts", i, "name"),
                f"no rule raises alert '{name}': name it in a rule's alert:, or remove it",
            )
    inputs = spec.data_contract.fields
    for i, drift in enumerate(m.drift):
        loc = (*at, "drift", i)
        spec_field = inputs.get(drift.field)
        if spec_field is None:
            yield ((*loc, "field"), _unknown(drift.field, list(inputs), "data_contract"))
            continue
        yield from _fits(loc, drift, field_kind(spec_field), spec_field.type)
    outputs = spec.outputs().fields
    for i, out in enumerate(m.outputs):
        loc = (*at, "outputs", i)
        out_field = outputs.get(out.field)
        if out_field is None:
            yield ((*loc, "field"), _unknown(out.field, list(outputs), "the output contract"))
            continue
        if out.statistic == "positive_rate":
            if out.field != label_output(spec):
                yield (
                    (*loc, "statistic"),
                    "positive_rate is the share of predicted positives: it applies to the label "
                    "output of a binary classifier",
                )
            continue
        yield from _fits(loc, out, field_kind(out_field), out_field.type)
    yield from _one_gauge_each(spec)
    yield from _service_issues(spec)
    if score_output(spec) is None or label_output(spec) is None:
        for i in range(len(m.performance)):
            yield (
                (*at, "performance", i, "metric"),
                "performance rules apply to binary classifiers with score and label outputs",
            )
    for i, slo in enumerate(m.slos):
        loc = (*at, "slos", i)
        if duration_seconds(slo.window) <= LONGEST_BURN_WINDOW_S:
            yield (
                (*loc, "window"),
                "an SLO's budget window must be longer than the 6h burn-rate window, e.g. 30d",
            )
        if slo.kind == "availability" and slo.latency_ms is not None:
            yield ((*loc, "latency_ms"), "latency_ms applies to a latency SLO")
        if slo.kind == "latency":
            bound = slo_latency_ms(spec, slo.latency_ms)
            if bound is None:
                yield (
                    (*loc, "latency_ms"),
                    "a latency SLO needs latency_ms (or api.latency_budget.p99_ms)",
                )
            elif bound not in LATENCY_BUCKETS_MS:
                yield (
                    (*loc, "latency_ms"),
                    f"{bound:g} ms is not a bucket of the server's latency histogram; choose one "
                    f"of {', '.join(f'{b:g}' for b in LATENCY_BUCKETS_MS)}",
                )


def _one_gauge_each(spec: HandoffSpec) -> Iterator[tuple[Loc, str]]:
    """The server exports one gauge per field and statistic (``mlhandoff_drift{field,
    statistic}``): two rules on the same pair must agree on the window it is measured over."""
    seen: dict[tuple[str, str], tuple[str, int, str]] = {}
    m = spec.monitoring
    for section, rules in (("drift", m.drift), ("outputs", m.outputs)):
        for i, rule in enumerate(rules):
            key = (rule.field, rule.statistic)
            first = seen.setdefault(key, (section, i, rule.window))
            if first[2] != rule.window:
                yield (
                    ("monitoring", section, i, "window"),
                    f"{rule.field} {rule.statistic} is measured over {first[2]} by "
                    f"monitoring.{first[0]}[{first[1]}]: the server keeps one window per field "
                    "and statistic",
                )


def _service_issues(spec: HandoffSpec) -> Iterator[tuple[Loc, str]]:
    for i, rule in enumerate(spec.monitoring.service):
        loc: Loc = ("monitoring", "service", i)
        threshold = service_threshold(rule, spec)
        if threshold is None:
            key = rule.metric.removeprefix("latency_") + "_ms"
            yield ((*loc, "threshold"), f"set threshold (ms) or api.latency_budget.{key}")
        elif not rule.metric.startswith("latency_") and threshold >= 1:
            yield ((*loc, "threshold"), f"{rule.metric} is a share: the threshold is below 1")


def _fits(
    loc: Loc, rule: DriftRule | OutputRule, kind: FieldKind, type_name: str
) -> Iterator[tuple[Loc, str]]:
    info = STATISTICS[rule.statistic]
    if kind not in info.kinds:
        fitting = [s for s, i in STATISTICS.items() if kind in i.kinds]
        what = {
            "numeric": "numeric values",
            "categorical": "categories",
            "other": "not profiled beyond nulls",
        }[kind]
        yield (
            (*loc, "statistic"),
            f"{rule.statistic} does not fit '{rule.field}' ({type_name}: {what}); "
            f"use one of {', '.join(fitting)}",
        )
    threshold = rule.threshold
    bounded = info.breach == "below" or rule.statistic in ("js", "null_rate", "unseen_rate")
    if threshold is not None and bounded and threshold >= 1:
        yield ((*loc, "threshold"), f"{rule.statistic} lies in [0, 1]: the threshold is below 1")


def _unknown(name: str, known: list[str], where: str) -> str:
    guess = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{guess[0]}'?" if guess else f" ({', '.join(known[:12])})"
    return f"'{name}' is not in {where}{hint}"
