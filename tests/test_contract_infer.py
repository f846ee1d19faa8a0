"""Inferring a contract from a sample: what the data shows, with the evidence written down."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlhandoff.contract import CompiledContract, infer_fields
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract, is_todo


def test_infers_types_nulls_domains_timezones_and_ids() -> None:
    table = pa.table(
        {
            "tx_id": ["a", "b", "c", "d", "e", "f"],
            "amount": [1.5, 2.0, None, 9.0, 3.0, 4.0],
            "country": ["DE", "FR", "DE", "ES", "FR", "DE"],
            "ts": pa.array(range(6), pa.timestamp("us", tz="Europe/Berlin")),
            "naive": pa.array(range(6), pa.timestamp("us")),
            "iso": [f"2026-01-0{i + 1}T10:00:00Z" for i in range(6)],
            "flag": [True, False, True, True, False, True],
            "tier": pa.array(["x", "y", "x", "x", "y", "x"]).dictionary_encode(),
            "emb": [[0.1, 0.2]] * 6,
            "y": [0, 1, 0, 0, 1, 0],
        }
    )
    fields = infer_fields(table, label="y")
    assert "y" not in fields
    assert fields["tx_id"].id and fields["tx_id"].type == "string"
    assert fields["amount"].nullable and fields["amount"].max_null_fraction == 0.334
    assert fields["country"].type == "category" and fields["country"].domain == ["DE", "ES", "FR"]
    assert fields["ts"].timezone == "Europe/Berlin"
    assert fields["naive"].timezone is None and "TODO" in (fields["naive"].description or "")
    assert (fields["iso"].type, fields["iso"].timezone) == ("timestamp", "UTC")
    assert fields["flag"].type == "bool"
    assert (fields["tier"].type, fields["tier"].domain) == ("category", ["x", "y"])
    assert (fields["emb"].type, fields["emb"].length) == ("array", 2)
    # what was inferred from the data accepts that same data, label included
    assert CompiledContract(DataContract(label="y", fields=fields)).validate(table).ok


def test_ranges_come_from_quantiles_with_a_stated_margin() -> None:
    rng = np.random.default_rng(0)
    amount = rng.lognormal(3, 1, 5000)
    amount[0] = 1e6  # one wild outlier: covered, but it does not widen the margin
    hours = np.arange(5000) % 24
    table = pa.table({"amount": amount, "hour": hours, "p": rng.uniform(0, 1, 5000)})
    fields = infer_fields(table)
    a = fields["amount"]
    assert a.min == 0 and a.max is not None and 1e6 <= a.max < 1.01e6
    assert is_todo(a.description) and "p0.1-p99.9" in (a.description or "")
    assert "widened by 10%" in (a.description or "")
    # every integer between min and max occurs: taken as the full range, no margin
    assert (fields["hour"].min, fields["hour"].max) == (0, 23)
    assert "every integer in between occurs" in (fields["hour"].description or "")
    # values in [0, 1] stay in [0, 1]
    assert (fields["p"].min, fields["p"].max) == (0.0, 1.0)
    assert CompiledContract(DataContract(fields=fields)).validate(table).ok


def test_inferred_contract_accepts_its_own_sample() -> None:
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "x": rng.normal(size=500),
            "k": rng.integers(0, 5, size=500),
            "c": rng.choice(["a", "b", "c"], size=500),
            "ts": pa.array(np.arange(500), pa.timestamp("s", tz="UTC")),
        }
    )
    report = CompiledContract(DataContract(fields=infer_fields(table))).validate(table)
    assert report.ok, report.violations


def test_leaky_features_are_flagged_with_evidence() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    table = pa.table(
        {
            "noise": rng.normal(size=400),
            "chargeback_amount": y * 50.0 + rng.uniform(0, 1, 400),
            "y_lagged": rng.normal(size=400),
            "y": y,
        }
    )
    fields = infer_fields(table, label="y")
    assert fields["noise"].leakage_risk is None
    assert "ROC AUC 1.000" in (fields["chargeback_amount"].leakage_risk or "")
    assert "name contains the label's" in (fields["y_lagged"].leakage_risk or "")


def test_inference_refuses_empty_sample_unknown_label_and_ragged_arrays() -> None:
    with pytest.raises(InputError, match="0 rows"):
        infer_fields(pa.table({"a": pa.array([], pa.int64())}))
    with pytest.raises(InputError, match="label column 'y' is not in the sample"):
        infer_fields(pa.table({"a": [1]}), label="y")
    with pytest.raises(InputError, match="fixed length"):
        infer_fields(pa.table({"e": [[1.0], [1.0, 2.0]]}))
