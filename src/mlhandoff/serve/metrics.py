"""Prometheus metrics of one server, in their own registry (several apps can share a process);
``Scrape`` reads a ``/metrics`` answer back (loadtests, benches, tests)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from mlhandoff.spec.models import OutputField

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_VALUE_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mlhandoff_requests",
            "Requests by route, status code and the version that answered ('-': refused before "
            "a version was chosen).",
            ["route", "status", "version"],
            registry=r,
        )
        self.latency = Histogram(
            "mlhandoff_request_latency_seconds",
            "Request latency, by route and the version that answered.",
            ["route", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "mlhandoff_in_flight_requests", "Requests being handled.", registry=r
        )
        self.batch_rows = Histogram(
            "mlhandoff_batch_rows",
            "Rows per model call (micro-batches).",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.prediction = Histogram(
            "mlhandoff_prediction_value",
            "Predicted values by output and version.",
            ["output", "version"],
            buckets=_VALUE_BUCKETS,
            registry=r,
        )
        self.violations = Counter(
            "mlhandoff_validation_failures",
            "Contract violations by field and rule.",
            ["field", "rule"],
            registry=r,
        )
        self.fallbacks = Counter(
            "mlhandoff_fallback",
            "Answers from the fallback model, by reason.",
            ["reason"],
            registry=r,
        )
        self.abstains = Counter(
            "mlhandoff_abstain", "Predictions answered with abstain.", registry=r
        )
        self.log_dropped = Counter(
            "mlhandoff_prediction_log_dropped",
            "Prediction-log records dropped (buffer full, or the write failed: disk full).",
            registry=r,
        )
        # The metric keeps its first name ("worker") so that dashboards and alerts keep working.
        self.model_restarts = Counter(
            "mlhandoff_model_worker_restarts",
            "Model processes restarted after a crash or a hang, by model.",
            ["model"],
            registry=r,
        )
        self.model_info = Gauge(
            "mlhandoff_model_info",
            "The served bundle.",
            ["name", "version", "version_tag", "digest"],
            registry=r,
        )
        self.ready = Gauge("mlhandoff_ready", "1 when the model is loaded and warmed.", registry=r)
        # Canary and shadow serving (serve/canary.py): a baseline and a candidate in one server.
        self.rollout_weight = Gauge(
            "mlhandoff_rollout_weight",
            "Share of requests (0-100) the candidate gets, by mode (canary or shadow).",
            ["mode"],
            registry=r,
        )
        self.candidate_refused = Counter(
            "mlhandoff_candidate_contract_refused",
            "Requests routed to the candidate that break its data contract but not the "
            "baseline's: answered by the baseline.",
            registry=r,
        )
        self.shadow = Counter(
            "mlhandoff_shadow_predictions",
            "Shadow predictions of the candidate (logged, never answered), by status "
            "('skipped': too many in flight).",
            ["version", "status"],
            registry=r,
        )

    def observe_outputs(
        self, outputs: pa.Table, fields: Mapping[str, OutputField], version: str
    ) -> None:
        """Float outputs into the prediction-value histogram (answers of up to 64 rows)."""
        if outputs.num_rows > 64:
            return
        for name, out in fields.items():
            if out.type == "float":
                histogram = self.prediction.labels(name, version)
                for value in outputs.column(name).to_pylist():
                    if value is not None:
                        histogram.observe(value)


class Scrape:
    """A ``/metrics`` answer read back as samples, the way Prometheus stores them: a metric
    that was registered but never observed has ``# HELP`` lines and no samples to match."""

    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def value(self, name: str, /, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``; KeyError
        when there is none."""
        found = [
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]
        if not found:
            raise KeyError(f"no sample {name}{labels or ''}")
        return float(sum(found))


def sample_values(text: str, names: Iterable[str]) -> dict[str, float]:
    """Totals of the named samples in a Prometheus exposition (summed over labels), parsed by
    prometheus_client's own parser: what tests and benches read from ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = set(names)
    totals = dict.fromkeys(wanted, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                totals[sample.name] += sample.value
    return totals
