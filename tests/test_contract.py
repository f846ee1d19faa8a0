from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlhandoff.contract import CompiledContract, infer_fields, read_table
from mlhandoff.errors import ContractViolation, InputError
from mlhandoff.spec.models import DataContract, FieldSpec


def _contract(**fields: dict) -> CompiledContract:
    return CompiledContract(DataContract(fields={k: FieldSpec(**v) for k, v in fields.items()}))


def _rules(report) -> set[tuple[str, str]]:
    return {(v.field, v.rule) for v in report.violations}


# --- reading -----------------------------------------------------------------------------------


def test_reads_every_supported_source(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "d.parquet")
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_json(tmp_path / "d.json", orient="records")
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    sources = [
        frame,
        pl.from_pandas(frame),
        pa.Table.from_pandas(frame),
        frame.to_dict("records"),
        *(tmp_path / f"d.{ext}" for ext in ("parquet", "csv", "json", "jsonl")),
    ]
    for source in sources:
        table = read_table(source)
        assert table.column("a").to_pylist() == [1, 2], source
        assert table.column("b").to_pylist() == ["x", "y"], source


def test_corrupt_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable Parquet file"):
        read_table(path)


def test_csv_with_semicolons_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("a;b;c\n1;2;3\n")
    with pytest.raises(InputError, match="delimiter"):
        read_table(path)


def test_csv_not_utf8_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name,city\nJosé,Málaga\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        read_table(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="file is empty"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(InputError, match="file not found"):
        read_table(tmp_path / "nope.parquet")
    with pytest.raises(InputError, match="unknown data format"):
        (tmp_path / "x.xlsx").write_text("x")
        read_table(tmp_path / "x.xlsx")


def test_mixed_type_column_in_pandas_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="mixes types"):
        read_table(pd.DataFrame({"a": [1, "two", 3.0]}))


# --- inference ---------------------------------------------------------------------------------


def test_infers_types_ranges_nulls_domains_timezones_and_ids() -> None:
    table = pa.table(
        {
            "tx_id": ["a", "b", "c", "d"],
            "amount": [1.5, 2.0, None, 9.0],
            "n": [3, 1, 2, 7],
            "country": ["DE", "FR", "DE", "ES"],
            "ts": pa.array([1, 2, 3, 4], pa.timestamp("us", tz="Europe/Berlin")),
            "naive": pa.array([1, 2, 3, 4], pa.timestamp("us")),
            "flag": [True, False, True, True],
            "y": [0, 1, 0, 0],
        }
    )
    fields = infer_fields(table, label="y")
    assert "y" not in fields
    assert fields["tx_id"].id and fields["tx_id"].type == "string"
    assert (fields["amount"].type, fields["amount"].min, fields["amount"].max) == (
        "float",
        1.5,
        9.0,
    )
    assert fields["amount"].nullable and fields["amount"].max_null_fraction == 0.5
    assert (fields["n"].min, fields["n"].max, fields["n"].nullable) == (1, 7, False)
    assert fields["country"].type == "category" and fields["country"].domain == ["DE", "ES", "FR"]
    assert fields["ts"].timezone == "Europe/Berlin"
    assert fields["naive"].timezone is None and "TODO" in (fields["naive"].description or "")
    assert fields["flag"].type == "bool"
    # what was inferred from the data accepts that same data
    # what was inferred from the data accepts that same data, label included
    assert CompiledContract(DataContract(label="y", fields=fields)).validate(table).ok


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


def test_inference_refuses_empty_sample_and_unknown_label() -> None:
    with pytest.raises(InputError, match="0 rows"):
        infer_fields(pa.table({"a": pa.array([], pa.int64())}))
    with pytest.raises(InputError, match="label column 'y' is not in the sample"):
        infer_fields(pa.table({"a": [1]}), label="y")


# --- validation --------------------------------------------------------------------------------


def test_range_is_inclusive_at_the_bound_and_violated_just_past_it() -> None:
    contract = _contract(x={"type": "float", "min": 0.0, "max": 1.0})
    assert contract.validate(pa.table({"x": [0.0, 1.0]})).ok
    report = contract.validate(pa.table({"x": [math.nextafter(0.0, -1), math.nextafter(1.0, 2)]}))
    assert _rules(report) == {("x", "min"), ("x", "max")}
    assert [v.rows for v in report.violations] == [[0], [1]]


def test_nan_and_inf_in_a_non_nullable_float() -> None:
    report = _contract(x={"type": "float", "min": 0, "max": 10}).validate(
        pa.table({"x": [1.0, float("nan"), float("inf")]})
    )
    assert _rules(report) == {("x", "not_null"), ("x", "finite")}


def test_missing_and_extra_columns_are_named() -> None:
    contract = _contract(a={"type": "int"}, b={"type": "int"})
    report = contract.validate(pa.table({"a": [1], "zzz": [2]}))
    messages = {v.rule: v.message for v in report.violations}
    assert "missing: b" in messages["missing_column"]
    assert "not in the contract: zzz" in messages["unexpected_column"]
    assert contract.validate(pa.table({"a": [1], "b": [1], "zzz": [2]}), allow_extra=True).ok


def test_wrong_types_are_reported_not_raised() -> None:
    contract = _contract(a={"type": "int"}, b={"type": "bool"}, c={"type": "timestamp"})
    report = contract.validate(pa.table({"a": [1.5], "b": ["yes"], "c": ["2026-01-01"]}))
    assert _rules(report) == {("a", "type"), ("b", "type"), ("c", "type")}


def test_domain_ids_and_timezone() -> None:
    contract = _contract(
        c={"type": "category", "domain": ["DE", "FR"]},
        i={"type": "string", "id": True},
        t={"type": "timestamp", "timezone": "UTC"},
    )
    table = pa.table({"c": ["DE", "XX"], "i": ["a", "a"], "t": pa.array([1, 2], pa.timestamp("s"))})
    assert _rules(contract.validate(table)) == {("c", "domain"), ("i", "unique"), ("t", "timezone")}


def test_zero_row_batch_is_valid_and_raise_for_violations() -> None:
    contract = _contract(a={"type": "int", "min": 0})
    assert contract.validate(pa.table({"a": pa.array([], pa.int64())})).ok
    with pytest.raises(ContractViolation, match="a: 1 × below min 0"):
        contract.validate(pa.table({"a": [-1]})).raise_for_violations()


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(0, 1e6, allow_nan=False),
    inside=st.lists(st.floats(0, 1), min_size=1, max_size=20),
    outside=st.one_of(st.none(), st.floats(1e-3, 1e3), st.floats(-1e3, -1e-3), st.just(math.nan)),
)
def test_a_value_inside_passes_and_one_outside_is_reported_once(
    low, width, inside, outside
) -> None:
    high = low + width
    contract = _contract(x={"type": "float", "min": low, "max": high})
    values = [low + f * width for f in inside]
    values = [min(max(v, low), high) for v in values]
    assert contract.validate(pa.table({"x": values})).ok
    if outside is None:
        return
    bad = (
        math.nan
        if math.isnan(outside)
        else (high + abs(outside) * (1 + abs(high)))
        if outside > 0
        else (low - abs(outside) * (1 + abs(low)))
    )
    position = len(values) // 2
    report = contract.validate(pa.table({"x": [*values[:position], bad, *values[position:]]}))
    assert len(report.violations) == 1
    (violation,) = report.violations
    expected_rule = "not_null" if math.isnan(bad) else ("max" if bad > high else "min")
    assert (violation.field, violation.rule, violation.count, violation.rows) == (
        "x",
        expected_rule,
        1,
        [position],
    )


def test_null_in_a_non_nullable_float_is_reported() -> None:
    report = _contract(x={"type": "float"}).validate(
        pa.table({"x": pa.array([None, 1.0], pa.float64())})
    )
    assert _rules(report) == {("x", "not_null")}
    assert report.violations[0].rows == [0]
