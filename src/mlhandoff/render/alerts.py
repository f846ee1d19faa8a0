"""Prometheus alerting rules from the spec's monitoring section (``docs/alerts.yaml``), and the
``promtool test rules`` unit tests that prove each fires after its ``for:`` and not before
(``docs/alerts.test.yaml``).

The expressions read the server's metrics (``serve/metrics.py``; counters carry ``_total``):

* drift and output rules: ``mlhandoff_drift{field, statistic}``, the statistic the server
  computes over the rule's window from the reference profile (the same functions as
  ``mlhandoff monitor``); p-values (ks, chi2) breach below the threshold, the rest above;
* error and contract-failure rates: shares of 5xx and 422 answers among prediction requests;
* latency: ``histogram_quantile`` of the request-latency histogram, in ms, against the budget;
* each SLO: multi-window burn-rate alerts (the SRE workbook's): the budget burning 14.4× too
  fast over 1h and 5m (2% of a 30-day budget in an hour), or 6× over 6h and 30m (5% in six
  hours). For another budget window the factors keep those shares: 0.02·W/1h and 0.05·W/6h.

Performance rules need labels (or the logged scores): ``mlhandoff monitor`` judges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mlhandoff.spec.durations import duration_seconds
from mlhandoff.spec.models import Alert, HandoffSpec, OutputRule, Slo
from mlhandoff.spec.monitoring import STATISTICS, service_threshold, slo_latency_ms, threshold_of

#: The routes that answer predictions (the ``route`` label of the request metrics).
PREDICTION_ROUTES = "/predict|/invocations|/v2/models/.+/infer"
_ROUTES = f'route=~"{PREDICTION_ROUTES}"'
#: (share of the budget, long window, short window) of each burn-rate alert.
BURN_WINDOWS = ((0.02, "1h", "5m"), (0.05, "6h", "30m"))


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    for_: str
    labels: dict[str, str]
    annotations: dict[str, str]
    #: For the unit tests: series (promtool notation) that make the expression true from the
    #: first minute or two, and the labels the expression's result carries.
    series: list[tuple[str, str]] = field(default_factory=list)
    result_labels: dict[str, str] = field(default_factory=dict)
    #: Minutes after the series start before the expression is true (rates need 2 samples).
    warmup_m: int = 0


def burn_factor(share: float, slo_window: str, long_window: str) -> float:
    """How many times too fast the budget burns when ``share`` of it goes in ``long_window``."""
    return share * duration_seconds(slo_window) / duration_seconds(long_window)


def alert_rules(spec: HandoffSpec) -> list[AlertRule]:
    """Every live rule of the spec as a Prometheus alerting rule, in the spec's order."""
    alerts = {a.name: a for a in spec.monitoring.alerts}
    m = spec.monitoring
    rules: list[AlertRule] = []
    for section, items in (("drift", m.drift), ("outputs", m.outputs)):
        for i, drift in enumerate(items):
            rules.append(_drift(spec, alerts[drift.alert], f"monitoring.{section}[{i}]", drift))
    for i, service in enumerate(m.service):
        rules.append(_service(spec, alerts[service.alert], f"monitoring.service[{i}]", service))
    for i, slo in enumerate(m.slos):
        rules += _burn(spec, alerts[slo.alert], f"monitoring.slos[{i}]", slo)
    return rules


def _labels(spec: HandoffSpec, alert: Alert, source: str, **extra: str) -> dict[str, str]:
    labels = {"severity": alert.severity, "model": spec.name, "spec_rule": source, **extra}
    if alert.route:
        labels["route"] = alert.route
    return labels


def _annotations(alert: Alert, description: str) -> dict[str, str]:
    return {
        "summary": alert.summary or alert.name,
        "description": description,
        "runbook_url": f"RUNBOOK.md#{alert.name.lower()}",
    }


def _drift(spec: HandoffSpec, alert: Alert, source: str, rule: Any) -> AlertRule:
    selector = f"mlhandoff_drift{{field={_q(rule.field)},statistic={_q(rule.statistic)}}}"
    labels = {"field": rule.field, "statistic": rule.statistic}
    if isinstance(rule, OutputRule) and rule.statistic == "positive_rate":
        lo, hi = (
            rule.min if rule.min is not None else 0.0,
            rule.max if rule.max is not None else 1.0,
        )
        expr = f"{selector} < {_num(lo)} or {selector} > {_num(hi)}"
        what = f"share of {rule.field} positive over {rule.window} outside [{lo:g}, {hi:g}]"
        bad = lo / 2 if lo > 0 else min(1.0, hi * 2)
    else:
        threshold = threshold_of(rule)
        below = STATISTICS[rule.statistic].breach == "below"
        expr = f"{selector} {'<' if below else '>'} {_num(threshold)}"
        what = f"{rule.field} {rule.statistic} over {rule.window} {'below' if below else 'above'} {threshold:g}"
        bad = threshold / 10 if below else threshold * 2 + 0.1
    return AlertRule(
        alert.name,
        expr,
        rule.for_,
        _labels(spec, alert, source),
        _annotations(alert, f"{what} for {rule.for_}"),
        series=[(selector, f"{_num(bad)}x600")],
        result_labels=labels,
    )


def _ratio(bad: str, window: str) -> str:
    return (
        f"sum(rate(mlhandoff_requests_total{{{_ROUTES},{bad}}}[{window}])) / "
        f"sum(rate(mlhandoff_requests_total{{{_ROUTES}}}[{window}]))"
    )


def _requests(bad_status: str, bad_per_min: int, total_per_min: int) -> list[tuple[str, str]]:
    ok = total_per_min - bad_per_min
    return [
        ('mlhandoff_requests_total{route="/predict",status="200"}', f"0+{ok}x600"),
        (
            f'mlhandoff_requests_total{{route="/predict",status="{bad_status}"}}',
            f"0+{bad_per_min}x600",
        ),
    ]


def _service(spec: HandoffSpec, alert: Alert, source: str, rule: Any) -> AlertRule:
    threshold = service_threshold(rule, spec) or 0.0
    window = rule.window
    if rule.metric == "error_rate":
        expr = _ratio('status=~"5.."', window) + f" > {_num(threshold)}"
        what = f"share of 5xx answers over {window} above {threshold:g}"
        series = _requests("503", _bad_per_100(threshold), 100)
    elif rule.metric == "contract_failure_rate":
        expr = _ratio('status="422"', window) + f" > {_num(threshold)}"
        what = f"share of requests refused by the data contract (422) over {window} above {threshold:g}"
        series = _requests("422", _bad_per_100(threshold), 100)
    else:
        quantile = int(rule.metric.removeprefix("latency_p")) / 100
        expr = (
            f"histogram_quantile({_num(quantile)}, sum by (le) (rate("
            f"mlhandoff_request_latency_seconds_bucket{{{_ROUTES}}}[{window}]))) * 1000 > "
            f"{_num(threshold)}"
        )
        what = f"p{int(quantile * 100)} latency over {window} above {threshold:g} ms"
        slow = _le(threshold * 4)
        series = [
            (
                f'mlhandoff_request_latency_seconds_bucket{{route="/predict",le="{_le(threshold)}"}}',
                "0x600",
            ),
            (
                f'mlhandoff_request_latency_seconds_bucket{{route="/predict",le="{slow}"}}',
                "0+10x600",
            ),
            ('mlhandoff_request_latency_seconds_bucket{route="/predict",le="+Inf"}', "0+10x600"),
        ]
    return AlertRule(
        alert.name,
        expr,
        rule.for_,
        _labels(spec, alert, source),
        _annotations(alert, f"{what} for {rule.for_}"),
        series=series,
        warmup_m=1,
    )


def _bad_per_100(threshold: float) -> int:
    return min(100, max(1, int(threshold * 100) * 3 + 1))


def _burn(spec: HandoffSpec, alert: Alert, source: str, slo: Slo) -> list[AlertRule]:
    budget = 1 - slo.target
    out = []
    for share, long, short in BURN_WINDOWS:
        factor = burn_factor(share, slo.window, long)
        limit = _num(factor * budget)
        expr = f"({slo_bad_ratio(spec, slo, long)}) > {limit} and ({slo_bad_ratio(spec, slo, short)}) > {limit}"
        what = (
            f"the {slo.name} SLO ({slo.target:g} over {slo.window}) burns its budget "
            f"{factor:g}x too fast over {long} and {short}"
        )
        labels = _labels(
            spec, alert, source, slo=slo.name, burn_rate=f"{factor:g}", window=f"{long}/{short}"
        )
        out.append(AlertRule(alert.name, expr, "0m", labels, _annotations(alert, what), warmup_m=1))
    return out


def _slo_series(spec: HandoffSpec, slo: Slo, bad_share: float) -> list[tuple[str, str]]:
    """Prediction requests of which ``bad_share`` miss the SLO, 10,000 a minute."""
    total = 10_000
    bad = min(total, max(1, round(total * bad_share)))
    if slo.kind == "availability":
        return _requests("500", bad, total)
    le = _le(slo_latency_ms(spec, slo.latency_ms) or 0.0)
    return [
        (
            f'mlhandoff_request_latency_seconds_bucket{{route="/predict",le="{le}"}}',
            f"0+{total - bad}x600",
        ),
        ('mlhandoff_request_latency_seconds_count{route="/predict"}', f"0+{total}x600"),
    ]


def slo_bad_ratio(spec: HandoffSpec, slo: Slo, window: str) -> str:
    """PromQL: the share of prediction requests over ``window`` that miss the SLO."""
    if slo.kind == "availability":
        return _ratio('status=~"5.."', window)
    le = _q(_le(slo_latency_ms(spec, slo.latency_ms) or 0.0))
    return (
        f"1 - (sum(rate(mlhandoff_request_latency_seconds_bucket{{{_ROUTES},le={le}}}[{window}])) / "
        f"sum(rate(mlhandoff_request_latency_seconds_count{{{_ROUTES}}}[{window}])))"
    )


def render_alerts(spec: HandoffSpec) -> str:
    """``docs/alerts.yaml``: one group of alerting rules for this bundle."""
    rules = []
    for r in alert_rules(spec):
        entry: dict[str, Any] = {"alert": r.alert, "expr": r.expr}
        if duration_seconds(r.for_):
            entry["for"] = r.for_
        entry |= {"labels": r.labels, "annotations": r.annotations}
        rules.append(entry)
    document = {"groups": [{"name": f"{spec.name}-{spec.version}", "rules": rules}]}
    header = (
        f"# Prometheus alerting rules of {spec.name} {spec.version}, rendered from handoff.yaml's\n"
        "# monitoring section by mlhandoff pack. Check: promtool check rules alerts.yaml;\n"
        "# prove: promtool test rules alerts.test.yaml\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, width=200, allow_unicode=True)


def render_alert_tests(spec: HandoffSpec, rules_file: str = "alerts.yaml") -> str:
    """``docs/alerts.test.yaml``: per rule, series that breach it: no alert a minute before its
    ``for:`` has passed, the alert (labels and annotations) a minute after. Per SLO, a burn
    between the two factors fires the slow-burn alert only, a faster one fires both."""
    tests = []
    rules = alert_rules(spec)
    for r in rules:
        if "slo" in r.labels:
            continue
        wait = duration_seconds(r.for_) // 60 + r.warmup_m
        checks: list[dict[str, Any]] = []
        if wait > 1:
            checks.append({"eval_time": f"{wait - 1}m", "alertname": r.alert, "exp_alerts": []})
        checks.append(
            {"eval_time": f"{wait + 1}m", "alertname": r.alert, "exp_alerts": [_expected(r)]}
        )
        tests.append(_case(f"{r.alert} {r.labels['spec_rule']}", r.series, checks))
    for slo in spec.monitoring.slos:
        fast, slow = [r for r in rules if r.labels.get("slo") == slo.name]
        f_fast, f_slow = float(fast.labels["burn_rate"]), float(slow.labels["burn_rate"])
        budget = 1 - slo.target
        for name, factor, firing in (
            ("slow burn", (f_fast + f_slow) / 2, [slow]),
            ("fast burn", f_fast * 1.5, [fast, slow]),
        ):
            checks = [
                {
                    "eval_time": "5m",
                    "alertname": slow.alert,
                    "exp_alerts": [_expected(a) for a in firing],
                }
            ]
            series = _slo_series(spec, slo, factor * budget)
            tests.append(_case(f"{slow.alert} {slo.name} {name} ({factor:g}x)", series, checks))
    document = {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}
    header = f"# promtool unit tests of {rules_file}, rendered by mlhandoff pack.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=200, allow_unicode=True)


def _expected(rule: AlertRule) -> dict[str, Any]:
    return {
        "exp_labels": {**rule.result_labels, **rule.labels},
        "exp_annotations": rule.annotations,
    }


def _case(name: str, series: list[tuple[str, str]], checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": checks,
    }


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _num(value: float) -> str:
    return f"{value:.10g}"


def _le(ms: float) -> str:
    """A latency bucket's ``le`` label as the Prometheus client writes it."""
    from prometheus_client.utils import floatToGoString  # here: the model process imports render

    return floatToGoString(ms / 1000)
