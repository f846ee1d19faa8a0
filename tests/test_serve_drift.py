"""Live drift in the server (serve/drift.py): the gauges on /metrics are the numbers
``mlhandoff monitor`` computes on the same rows; the window slides; memory is fixed."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry, generate_latest

import mlhandoff
from mlhandoff.bundle import layout
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.monitor.profile import ProfileCounter
from mlhandoff.monitor.reference import load_reference
from mlhandoff.monitor.rules import positive_class
from mlhandoff.monitor.run import monitor
from mlhandoff.monitor.stats import psi
from mlhandoff.serve.drift import SUB_WINDOWS, LiveDrift
from mlhandoff.serve.metrics import Scrape
from serving import live_server


def _records(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.isoformat().replace("+00:00", "Z")
    return rows


def _drifted(table: pa.Table) -> pa.Table:
    """Amounts four times larger (within the contract's range) and every merchant in the US."""
    amounts = pc.min_element_wise(pc.multiply(table["amount_eur"], 4.0), 5000.0)
    table = table.set_column(table.column_names.index("amount_eur"), "amount_eur", amounts)
    us = pa.array(["US"] * table.num_rows).cast(table["country"].type)
    return table.set_column(table.column_names.index("country"), "country", us)


@pytest.fixture(scope="module")
def sample(example_bundle: Path) -> pa.Table:
    return pq.read_table(example_bundle / layout.EVAL_SAMPLE)


def _drift_gauges(scrape: Scrape) -> dict[tuple[str, str], float]:
    return {
        (s.labels["field"], s.labels["statistic"]): s.value
        for s in scrape.samples
        if s.name == "mlhandoff_drift"
    }


def test_the_gauges_are_the_monitors_numbers_on_the_same_rows(
    example_bundle: Path, sample: pa.Table, tmp_path: Path
) -> None:
    rows = pa.concat_tables([sample.slice(0, 300), _drifted(sample.slice(300, 300))])
    log_dir = tmp_path / "log"
    with live_server(example_bundle, model_process=False, log_dir=log_dir) as server:
        before = _drift_gauges(Scrape(server.client.get("/metrics").text))
        outputs = []
        for start in range(0, rows.num_rows, 50):
            batch = _records(rows.slice(start, 50))
            answer = server.client.post("/predict", json={"instances": batch})
            assert answer.status_code == 200, answer.text
            outputs += answer.json()["predictions"]
        scrape = Scrape(server.client.get("/metrics").text)
    gauges = _drift_gauges(scrape)
    spec = mlhandoff.open_bundle(example_bundle).spec
    rules = [*spec.monitoring.drift, *spec.monitoring.outputs]
    assert set(gauges) == set(before) == {(r.field, r.statistic) for r in rules}
    assert all(math.isnan(v) for v in before.values())  # exported before any row: NaN
    # mlhandoff monitor on the server's own prediction log, in one step holding every row (ten
    # years: no midnight to straddle), over which every rule is judged.
    report = monitor(example_bundle, log_dir, step="520w")
    assert len(report.windows) == 1 and report.windows[0].rows == rows.num_rows
    judged = {row.rule: row.value for row in report.windows[0].rules}
    for (field, statistic), value in gauges.items():
        assert value == pytest.approx(judged[f"{field} {statistic}"], rel=1e-9, abs=1e-12)
    assert gauges[("amount_eur", "psi")] > 0.2  # the drift is seen
    # ... and the statistic itself, on the rows sent and the answers received
    reference = load_reference(mlhandoff.open_bundle(example_bundle))
    valid, _ = CompiledContract(spec.data_contract).validate_json(_records(rows))
    scores = pa.table({"score": [o["score"] for o in outputs]})
    counted = ProfileCounter(reference).count(valid, scores)[0]
    assert gauges[("amount_eur", "psi")] == pytest.approx(
        psi(reference.inputs["amount_eur"], counted.inputs["amount_eur"]), rel=1e-9
    )
    assert gauges[("score", "psi")] == pytest.approx(
        psi(reference.outputs["score"], counted.outputs["score"]), rel=1e-9
    )
    nulls = {s.labels["field"]: s.value for s in scrape.samples if s.name == "mlhandoff_null_rate"}
    assert nulls == {
        "amount_eur": 0.0,
        "country": 0.0,
        "tx_count_1h": 0.0,
        "merchant_category": 0.0,
    }
    unseen = {
        s.labels["field"]: s.value for s in scrape.samples if s.name == "mlhandoff_unseen_rate"
    }
    assert unseen["merchant_category"] == 0.0  # a closed domain: anything else is a 422
    above = pc.sum(pc.greater(valid["amount_eur"], reference.inputs["amount_eur"].edges[-1]))
    assert unseen["amount_eur"] == pytest.approx(above.as_py() / rows.num_rows)


def _collect(drift: LiveDrift) -> Scrape:
    registry = CollectorRegistry()
    registry.register(drift)
    return Scrape(generate_latest(registry).decode())


def test_the_window_slides_in_fixed_memory(example_bundle: Path, sample: pa.Table) -> None:
    bundle = mlhandoff.open_bundle(example_bundle)
    spec = bundle.spec
    now = [1000.0]
    drift = LiveDrift(
        spec,
        load_reference(bundle),
        positive_class(bundle.record.model.classes),
        clock=lambda: now[0],
    )
    valid, report = CompiledContract(spec.data_contract).validate_json(
        _records(_drifted(sample.slice(0, 200)))
    )
    assert report.ok
    outputs = pa.table({"score": np.full(200, 0.9), "label": np.ones(200, np.int64)})
    sizes = [s.counts.nbytes for ring in drift._rings.values() for s in ring.slots.values()]
    for i in range(200):  # one row a request, the server's common case
        drift.observe(valid.slice(i, 1), outputs.slice(i, 1))
    gauges = _drift_gauges(_collect(drift))
    assert gauges[("amount_eur", "psi")] > 0.2
    assert gauges[("label", "positive_rate")] == 1.0
    # merchant_category's 1h window has passed, the 1d windows have not
    now[0] += 3600 + 3600 / SUB_WINDOWS
    gauges = _drift_gauges(_collect(drift))
    assert math.isnan(gauges[("merchant_category", "unseen_rate")])
    assert gauges[("amount_eur", "psi")] > 0.2
    # a day later every window is empty: NaN, still exported (the series never goes stale)
    now[0] += 86400
    gauges = _drift_gauges(_collect(drift))
    assert gauges and all(math.isnan(v) for v in gauges.values())
    for i in range(200):
        drift.observe(valid.slice(i, 1), outputs.slice(i, 1))
    assert _drift_gauges(_collect(drift))[("amount_eur", "psi")] > 0.2
    assert [s.counts.nbytes for ring in drift._rings.values() for s in ring.slots.values()] == sizes


def test_fewer_rows_than_min_rows_are_not_judged(example_bundle: Path, sample: pa.Table) -> None:
    bundle = mlhandoff.open_bundle(example_bundle)
    drift = LiveDrift(bundle.spec, load_reference(bundle), "1")
    valid, _ = CompiledContract(bundle.spec.data_contract).validate_json(
        _records(_drifted(sample.slice(0, 99)))
    )
    drift.observe(valid, pa.table({"score": np.full(99, 0.9), "label": np.ones(99, np.int64)}))
    assert math.isnan(_drift_gauges(_collect(drift))[("amount_eur", "psi")])  # min_rows 100
    drift.observe(valid.slice(0, 1), pa.table({"score": [0.9], "label": [1]}))
    assert _drift_gauges(_collect(drift))[("amount_eur", "psi")] > 0.2


def test_absent_nullable_fields_count_as_null(example_bundle: Path, sample: pa.Table) -> None:
    bundle = mlhandoff.open_bundle(example_bundle)
    spec = bundle.spec.model_copy(deep=True)
    spec.monitoring.drift[0].field = "distance_from_home_km"
    spec.monitoring.drift[0].statistic = "null_rate"
    drift = LiveDrift(spec, load_reference(bundle), "1")
    valid, _ = CompiledContract(spec.data_contract).validate_json(_records(sample.slice(0, 100)))
    outputs = pa.table({"score": np.full(100, 0.1), "label": np.zeros(100, np.int64)})
    drift.observe(valid.drop_columns(["distance_from_home_km"]).slice(0, 50), outputs.slice(0, 50))
    drift.observe(valid.slice(50, 50), outputs.slice(50, 50))
    scrape = _collect(drift)
    present = pc.sum(pc.is_valid(valid["distance_from_home_km"].slice(50, 50))).as_py()
    assert scrape.value("mlhandoff_null_rate", field="distance_from_home_km") == pytest.approx(
        (100 - present) / 100
    )


def test_no_live_drift_exports_no_gauges(example_bundle: Path) -> None:
    with live_server(example_bundle, model_process=False, live_drift=False) as server:
        assert server.service.drift is None
        text = server.client.get("/metrics").text
    assert "mlhandoff_drift" not in text and "mlhandoff_null_rate" not in text


def test_queued_rows_count_in_the_bucket_of_their_answer(
    example_bundle: Path, sample: pa.Table
) -> None:
    """Rows queued before and after the window slid past (300 requests: the queue is counted
    once on the way, once at the scrape) each land in their own time's bucket."""
    bundle = mlhandoff.open_bundle(example_bundle)
    spec = bundle.spec.model_copy(deep=True)
    spec.monitoring.drift[0].window = "1h"  # amount_eur psi
    reference = load_reference(bundle)
    now = [0.0]
    drift = LiveDrift(spec, reference, "1", clock=lambda: now[0])
    contract = CompiledContract(spec.data_contract)
    old, _ = contract.validate_json(_records(_drifted(sample.slice(0, 150))))
    new, _ = contract.validate_json(_records(sample.slice(150, 150)))
    outputs = pa.table({"score": [0.5], "label": [0]})
    for i in range(150):
        drift.observe(old.slice(i, 1), outputs)
    now[0] = 3600 + 60
    for i in range(150):
        drift.observe(new.slice(i, 1), outputs)
    expected = psi(
        reference.inputs["amount_eur"],
        ProfileCounter(reference).count(new)[0].inputs["amount_eur"],
    )
    assert _drift_gauges(_collect(drift))[("amount_eur", "psi")] == pytest.approx(expected)
    assert expected < 0.2


def test_two_rules_on_one_field_and_statistic_export_one_series(
    example_bundle: Path, sample: pa.Table
) -> None:
    """A ticket at 0.2 and a page at 0.5 on amount_eur's PSI: one gauge, both alerts read it."""
    bundle = mlhandoff.open_bundle(example_bundle)
    spec = bundle.spec.model_copy(deep=True)
    spec.monitoring.drift.append(spec.monitoring.drift[0].model_copy(update={"threshold": 0.5}))
    drift = LiveDrift(spec, load_reference(bundle), "1")
    valid, _ = CompiledContract(spec.data_contract).validate_json(_records(sample.slice(0, 120)))
    drift.observe(valid, pa.table({"score": np.full(120, 0.1), "label": np.zeros(120, np.int64)}))
    samples = [
        s
        for s in _collect(drift).samples
        if s.name == "mlhandoff_drift" and s.labels["field"] == "amount_eur"
    ]
    assert len(samples) == 1 and math.isfinite(samples[0].value)
