"""A Grafana dashboard of the server's metrics (``docs/dashboard.json``), from the spec: service
health against the latency budget and SLOs, traffic per model version, the prediction
distribution, and per-field drift, null and unseen rates with each rule's threshold drawn in.
Every query names only metrics the server exports (a test holds it to that)."""

from __future__ import annotations

import json
from typing import Any

from mlhandoff.render.alerts import PREDICTION_ROUTES, slo_bad_ratio
from mlhandoff.spec.models import HandoffSpec
from mlhandoff.spec.monitoring import STATISTICS, threshold_of

_ROUTES = f'route=~"{PREDICTION_ROUTES}"'
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


class _Layout:
    """Panels placed left to right, two per row (12 columns wide, 8 high), under row headers."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._x, self._y = 0, 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self._x + w > 24:
            self._x, self._y = 0, self._y + 8
        where = {"h": h, "w": w, "x": self._x, "y": self._y}
        self._x += w
        return where

    def row(self, title: str) -> None:
        if self._x:
            self._x, self._y = 0, self._y + 8
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": len(self.panels) + 1,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(
        self,
        title: str,
        targets: list[tuple[str, str]],
        *,
        unit: str = "short",
        threshold: float | None = None,
        kind: str = "timeseries",
        description: str = "",
    ) -> None:
        panel: dict[str, Any] = {
            "type": kind,
            "title": title,
            "id": len(self.panels) + 1,
            "datasource": _DATASOURCE,
            "description": description,
            "gridPos": self._place(12, 8),
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "expr": expr,
                    "legendFormat": legend,
                    "datasource": _DATASOURCE,
                }
                for i, (expr, legend) in enumerate(targets)
            ],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        }
        if threshold is not None:
            panel["fieldConfig"]["defaults"]["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "red", "value": threshold}],
            }
            panel["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
        self.panels.append(panel)


def dashboard(spec: HandoffSpec) -> dict[str, Any]:
    layout = _Layout()
    layout.row("Service health")
    layout.add(
        "Requests per second by status",
        [(f"sum by (status) (rate(mlhandoff_requests_total{{{_ROUTES}}}[5m]))", "{{status}}")],
        unit="reqps",
    )
    budget = spec.api.latency_budget
    p95 = budget.p95_ms if budget is not None else None
    layout.add(
        "Latency (ms)",
        [
            (
                f"histogram_quantile({q}, sum by (le) (rate(mlhandoff_request_latency_seconds_bucket"
                f"{{{_ROUTES}}}[5m]))) * 1000",
                f"p{int(float(q) * 100)}",
            )
            for q in ("0.5", "0.95", "0.99")
        ],
        unit="ms",
        threshold=p95,
        description="The red line is api.latency_budget.p95_ms." if p95 else "",
    )
    layout.add(
        "Share of 5xx and 422 answers",
        [
            (
                f'sum(rate(mlhandoff_requests_total{{{_ROUTES},status=~"5.."}}[5m])) / '
                f"sum(rate(mlhandoff_requests_total{{{_ROUTES}}}[5m]))",
                "5xx",
            ),
            (
                f'sum(rate(mlhandoff_requests_total{{{_ROUTES},status="422"}}[5m])) / '
                f"sum(rate(mlhandoff_requests_total{{{_ROUTES}}}[5m]))",
                "422 (contract)",
            ),
        ],
        unit="percentunit",
    )
    layout.add(
        "Contract violations by field and rule",
        [
            (
                "sum by (field, rule) (rate(mlhandoff_validation_failures_total[5m]))",
                "{{field}} {{rule}}",
            )
        ],
        unit="reqps",
    )
    for slo in spec.monitoring.slos:
        layout.add(
            f"SLO {slo.name}: share of requests meeting it over {slo.window} (target {slo.target:g})",
            [(f"1 - ({slo_bad_ratio(spec, slo, slo.window)})", slo.name)],
            unit="percentunit",
            threshold=slo.target,
            kind="stat",
        )
    layout.add(
        "Ready, in-flight requests, model restarts",
        [
            ("sum(mlhandoff_ready)", "ready replicas"),
            ("sum(mlhandoff_in_flight_requests)", "in flight"),
            ("sum(increase(mlhandoff_model_worker_restarts_total[1h]))", "restarts (1h)"),
            ("sum(rate(mlhandoff_prediction_log_dropped_total[5m]))", "log drops/s"),
        ],
    )
    layout.row("Traffic per model version")
    layout.add(
        "Requests per second by version",
        [
            (
                f'sum by (version) (rate(mlhandoff_requests_total{{{_ROUTES},version!="-"}}[5m]))',
                "{{version}}",
            )
        ],
        unit="reqps",
        description="The version that answered (a canary server: candidate and baseline).",
    )
    layout.add(
        "p95 latency by version",
        [
            (
                "histogram_quantile(0.95, sum by (le, version) (rate("
                f'mlhandoff_request_latency_seconds_bucket{{{_ROUTES},version!="-"}}[5m]))) * 1000',
                "{{version}}",
            )
        ],
        unit="ms",
        description="What the rollout judge compares: the candidate against the baseline.",
    )
    layout.add(
        "Share of 5xx by version",
        [
            (
                f'sum by (version) (rate(mlhandoff_requests_total{{{_ROUTES},status=~"5.."}}[5m])) / '
                f'sum by (version) (rate(mlhandoff_requests_total{{{_ROUTES},version!="-"}}[5m]))',
                "{{version}}",
            )
        ],
        unit="percentunit",
    )
    layout.add(
        "Fallback answers and abstentions",
        [
            ("sum by (reason) (rate(mlhandoff_fallback_total[5m]))", "fallback {{reason}}"),
            ("sum(rate(mlhandoff_abstain_total[5m]))", "abstain"),
        ],
        unit="reqps",
    )
    layout.row("Predictions")
    for name, out in spec.outputs().fields.items():
        if out.type == "float":
            layout.add(
                f"Distribution of {name}",
                [
                    (
                        f'sum by (le) (rate(mlhandoff_prediction_value_bucket{{output="{name}"}}[5m]))',
                        "{{le}}",
                    )
                ],
                kind="heatmap",
                description="Answers of up to 64 rows (the server's histogram).",
            )
    layout.add(
        "Rows per model call",
        [
            ("histogram_quantile(0.5, sum by (le) (rate(mlhandoff_batch_rows_bucket[5m])))", "p50"),
            (
                "histogram_quantile(0.99, sum by (le) (rate(mlhandoff_batch_rows_bucket[5m])))",
                "p99",
            ),
        ],
    )
    m = spec.monitoring
    layout.row("Drift against the reference profile")
    for rule in [*m.drift, *m.outputs]:
        selector = f'mlhandoff_drift{{field="{rule.field}",statistic="{rule.statistic}"}}'
        if rule.statistic == "positive_rate":
            title = f"{rule.field}: share of positives over {rule.window}"
            bound = rule.max
        else:
            info = STATISTICS[rule.statistic]
            bound = threshold_of(rule)
            title = f"{rule.field}: {rule.statistic} over {rule.window} ({info.meaning})"
        layout.add(title, [(selector, rule.statistic)], threshold=bound)
    fields = list(dict.fromkeys(r.field for r in m.drift))
    if fields:
        pattern = "|".join(fields)
        layout.add(
            "Null rate per field",
            [(f'mlhandoff_null_rate{{field=~"{pattern}"}}', "{{field}}")],
            unit="percentunit",
        )
        layout.add(
            "Unseen-value rate per field",
            [(f'mlhandoff_unseen_rate{{field=~"{pattern}"}}', "{{field}}")],
            unit="percentunit",
        )
    return {
        "title": f"{spec.name} {spec.version}",
        "uid": f"mlhandoff-{spec.name}"[:40],
        "tags": ["mlhandoff", spec.name],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "1m",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                }
            ]
        },
        "description": f"Rendered by mlhandoff pack from {spec.name} {spec.version}'s handoff.yaml.",
        "panels": layout.panels,
    }


def render_dashboard(spec: HandoffSpec) -> str:
    """``docs/dashboard.json``: import it in Grafana (Dashboards → Import)."""
    return json.dumps(dashboard(spec), indent=2) + "\n"


def panel_queries(document: dict[str, Any]) -> list[str]:
    """Every query of a dashboard (tests check each names metrics the server exports)."""
    return [t["expr"] for p in document["panels"] for t in p.get("targets", [])]
