"""The validator: every rule, at and past its bounds, on tables of one row and of many."""

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

from mlhandoff.contract import CompiledContract, read_table
from mlhandoff.errors import ContractViolation, InputError, SpecError
from mlhandoff.spec import parse_spec
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
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(InputError, match="unknown data format"):
        read_table(tmp_path / "x.xlsx")


def test_mixed_types_in_pandas_or_records_are_clear_errors() -> None:
    with pytest.raises(InputError, match="mixes types"):
        read_table(pd.DataFrame({"a": [1, "two", 3.0]}))
    with pytest.raises(InputError, match="records mix types"):
        read_table([{"a": 1}, {"a": "two"}])


# --- rules -------------------------------------------------------------------------------------


def test_range_is_inclusive_at_the_bound_and_violated_just_past_it() -> None:
    contract = _contract(x={"type": "float", "min": 0.0, "max": 1.0})
    assert contract.validate(pa.table({"x": [0.0, 1.0]})).ok
    report = contract.validate(pa.table({"x": [math.nextafter(0.0, -1), math.nextafter(1.0, 2)]}))
    assert _rules(report) == {("x", "min"), ("x", "max")}
    assert [v.rows for v in report.violations] == [[0], [1]]


def test_exclusive_bounds_reject_the_bound_itself() -> None:
    contract = _contract(
        x={"type": "float", "min": 0, "max": 1, "min_exclusive": True, "max_exclusive": True},
        n={"type": "int", "min": 0, "max": 10, "max_exclusive": True},
    )
    inside = pa.table({"x": [math.nextafter(0.0, 1), math.nextafter(1.0, 0)], "n": [0, 9]})
    assert contract.validate(inside).ok
    report = contract.validate(pa.table({"x": [0.0, 1.0], "n": [10, 3]}))
    assert _rules(report) == {("x", "min"), ("x", "max"), ("n", "max")}
    messages = {(v.field, v.rule): v.message for v in report.violations}
    assert "at or below exclusive min 0" in messages[("x", "min")]
    assert "at or above exclusive max 10" in messages[("n", "max")]


def test_nan_and_inf_in_a_non_nullable_float() -> None:
    report = _contract(x={"type": "float", "min": 0, "max": 10}).validate(
        pa.table({"x": [1.0, float("nan"), float("inf"), None, float("-inf")]})
    )
    by_rule = {v.rule: v for v in report.violations}
    assert set(by_rule) == {"not_null", "finite"}
    assert by_rule["not_null"].rows == [1, 3] and by_rule["finite"].rows == [2, 4]
    assert by_rule["finite"].values == ["inf", "-inf"]  # JSON-safe
    assert report.failing_rows == 4


def test_nullable_and_max_null_fraction() -> None:
    contract = _contract(x={"type": "float", "nullable": True, "max_null_fraction": 0.25})
    assert contract.validate(pa.table({"x": [1.0, None, 2.0, 3.0]})).ok
    report = contract.validate(pa.table({"x": [1.0, None, float("nan"), 3.0]}))
    (violation,) = report.violations
    assert violation.rule == "max_null_fraction" and violation.count == 2
    assert "50.0% nulls" in violation.message and "25.0%" in violation.message


def test_missing_and_extra_columns_are_named() -> None:
    contract = _contract(a={"type": "int"}, b={"type": "int"}, c={"type": "int", "nullable": True})
    report = contract.validate(pa.table({"a": [1], "zzz": [2]}))
    messages = {v.rule: v.message for v in report.violations}
    assert "seen in the contract, yet missing: b" in messages["missing_column"]
    assert "not in the contract: zzz" in messages["unexpected_column"]
    assert report.failing_rows == 1
    # an absent nullable column reads as all null: a notice, not a failure
    report = contract.validate(pa.table({"a": [1], "b": [1], "zzz": [2]}), allow_extra=True)
    assert report.ok and [n.rule for n in report.notices] == ["missing_column"]


def test_wrong_types_are_reported_not_raised() -> None:
    contract = _contract(
        a={"type": "int"},
        b={"type": "bool"},
        c={"type": "timestamp"},
        d={"type": "float"},
        e={"type": "date"},
    )
    table = pa.table(
        {"a": [1.5], "b": ["yes"], "c": [3], "d": ["1.5"], "e": pa.array([1], pa.timestamp("s"))}
    )
    report = contract.validate(table)
    assert _rules(report) == {(n, "type") for n in "abcde"}
    messages = {v.field: v.message for v in report.violations}
    assert "not a whole number" in messages["a"]
    assert "a number sent as text" in messages["d"]


def test_mixed_type_column_points_at_the_rows_that_are_not_numbers() -> None:
    report = _contract(x={"type": "float"}).validate(pa.table({"x": ["1.5", "2", "abc", "4"]}))
    (violation,) = report.violations
    assert (violation.rule, violation.rows, violation.values) == ("type", [2], ["abc"])
    assert "not a number" in violation.message


def test_categorical_domain_under_each_unseen_policy() -> None:
    table = pa.table({"c": ["DE", "XX", None, "FR", "YY"]})
    domain = ["DE", "FR", "other"]
    reject = _contract(c={"type": "category", "domain": domain, "nullable": True})
    report = reject.validate(table)
    (violation,) = report.violations
    assert (violation.rule, violation.rows, violation.values) == ("domain", [1, 4], ["XX", "YY"])

    allow = _contract(c={"type": "category", "domain": domain, "nullable": True, "unseen": "allow"})
    report = allow.validate(table)
    assert report.ok and [(n.rule, n.count) for n in report.notices] == [("unseen", 2)]
    assert "allowed and counted" in report.notices[0].message

    bucket = CompiledContract(
        DataContract(
            fields={
                "c": FieldSpec(
                    type="category", domain=domain, nullable=True, unseen={"bucket": "other"}
                )
            }
        )
    )
    report = bucket.validate(table)
    assert report.ok and "mapped to 'other'" in report.notices[0].message
    assert bucket.normalize(table).column("c").to_pylist() == ["DE", "other", None, "FR", "other"]


def test_domain_on_dictionary_and_integer_columns() -> None:
    contract = _contract(
        c={"type": "category", "domain": ["a", "b"]}, k={"type": "int", "domain": [1, 2, 3]}
    )
    table = pa.table({"c": pa.array(["a", "b", "z", "a"]).dictionary_encode(), "k": [1, 2, 3, 9]})
    report = contract.validate(table)
    assert {(v.field, v.rule, tuple(v.rows)) for v in report.violations} == {
        ("c", "domain", (2,)),
        ("k", "domain", (3,)),
    }


def test_pattern_and_length() -> None:
    contract = _contract(
        code={"type": "string", "pattern": "[A-Z]{2}-\\d+", "min_length": 4, "max_length": 6}
    )
    assert contract.validate(pa.table({"code": ["AB-1", "XY-123"]})).ok
    report = contract.validate(pa.table({"code": ["AB-1", "ab-1", "AB-1234", "A-1"]}))
    by_rule = {v.rule: v.rows for v in report.violations}
    # the pattern must match the whole value, not a part of it
    assert by_rule == {"pattern": [1, 3], "max_length": [2], "min_length": [3]}


def test_invalid_regex_in_the_spec_is_a_located_spec_error() -> None:
    text = """\
name: demo
version: "1"
model: {path: m.skops, task: binary_classification, version_tag: v1}
data_contract:
  fields:
    code:
      type: string
      pattern: "(?=lookahead)"
"""
    with pytest.raises(SpecError) as info:
        parse_spec(text, file=Path("handoff.yaml"))
    (issue,) = info.value.issues
    assert issue.path == "data_contract.fields.code.pattern" and issue.line == 8
    assert "invalid regular expression" in issue.message


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("{type: float, min_exclusive: true}", "min_exclusive needs a min"),
        ("{type: float, min: 1, max: 1, max_exclusive: true}", "admits no value"),
        ("{type: category, unseen: allow}", "needs a domain"),
        ("{type: category, domain: [a], unseen: {bucket: z}}", "bucket 'z' must be one of"),
        ("{type: int, pattern: x}", "pattern applies to string"),
        ("{type: string, min_length: 5, max_length: 2}", "exceeds max_length"),
        ("{type: array}", "needs length"),
        ("{type: timestamp, timezone: Mars/Olympus}", "unknown timezone"),
    ],
)
def test_rule_combinations_that_cannot_work_are_spec_errors(field: str, message: str) -> None:
    text = (
        'name: demo\nversion: "1"\n'
        "model: {path: m.skops, task: binary_classification, version_tag: v1}\n"
        f"data_contract:\n  fields:\n    x: {field}\n"
    )
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_ids_are_unique_within_a_batch() -> None:
    contract = _contract(i={"type": "string", "id": True, "nullable": True})
    report = contract.validate(pa.table({"i": ["a", "b", "a", None, "a", "c"]}))
    (violation,) = report.violations
    assert (violation.rule, violation.count, violation.rows) == ("unique", 2, [2, 4])


def test_timestamps_timezone_and_iso_text() -> None:
    contract = _contract(t={"type": "timestamp", "timezone": "UTC"}, d={"type": "date"})
    aware = pa.array([1, 2], pa.timestamp("s", tz="Europe/Berlin"))
    assert contract.validate(pa.table({"t": aware, "d": pa.array([1, 2], pa.date32())})).ok
    # JSON has no timestamp type: ISO 8601 text with an offset is an instant
    text = pa.table(
        {"t": ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"], "d": ["2026-01-31"] * 2}
    )
    assert contract.validate(text).ok
    naive = pa.table({"t": pa.array([1, 2], pa.timestamp("s")), "d": ["2026-01-31", "31/01/2026"]})
    report = contract.validate(naive)
    assert {(v.field, v.rule, tuple(v.rows)) for v in report.violations} == {
        ("t", "timezone", (0, 1)),
        ("d", "type", (1,)),
    }
    mixed = contract.validate(
        pa.table({"t": ["2026-01-01T00:00:00Z", "2026-01-01 00:00:00", "soon"], "d": [None] * 3})
    )
    assert {(v.field, v.rule, tuple(v.rows)) for v in mixed.violations} == {
        ("t", "type", (2,)),
        ("t", "timezone", (1,)),
        ("d", "not_null", (0, 1, 2)),
    }


def test_times_outside_the_years_1_to_9999_are_refused_with_their_field_and_row() -> None:
    """Regression: year 0 and year 10000 passed the contract and then broke the prediction log
    (Python cannot hold them)."""
    contract = _contract(t={"type": "timestamp", "nullable": True}, d={"type": "date"})
    edges = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59"]
    assert contract.validate(
        pa.table({"t": edges, "d": ["0001-01-01", "9999-12-31", "2026-01-01"]})
    ).ok
    text = pa.table(
        {
            "t": ["2026-01-01T00:00:00Z", "0000-06-01T00:00:00Z", "9999-12-31T23:00:00-05:00"],
            "d": ["2026-01-01"] * 3,
        }
    )
    (violation,) = contract.validate(text).violations
    assert (violation.field, violation.rule, violation.rows) == ("t", "type", [1, 2])
    assert "years 1 to 9999" in violation.message
    us_per_day = 86_400 * 10**6
    stored = pa.table(
        {
            "t": pa.array([0, -719_163 * us_per_day, None], pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "d": pa.array([0, 1, 2_932_897], pa.int32()).cast(pa.date32()),
        }
    )
    report = contract.validate(stored)
    assert {(v.field, v.rule, tuple(v.rows)) for v in report.violations} == {
        ("t", "type", (1,)),
        ("d", "type", (2,)),
    }
    assert report.to_dict()["violations"][0]["values"] == ["0000-12-31 00:00:00.000000Z"]
    assert report.failing_rows == 2


def test_fixed_length_arrays() -> None:
    contract = _contract(emb={"type": "array", "length": 3, "min": -1, "max": 1})
    good = pa.table({"emb": [[0.0, 0.5, -1.0], [1.0, 0.0, 0.0]]})
    assert contract.validate(good).ok
    bad = pa.table({"emb": [[0.0, 0.5], [0.0, 2.0, 0.0], [0.0, float("nan"), 0.0], None]})
    report = contract.validate(bad)
    assert {(v.rule, tuple(v.rows)) for v in report.violations} == {
        ("length", (0,)),
        ("max", (1,)),
        ("finite", (2,)),
        ("not_null", (3,)),
    }
    fixed = pa.table({"emb": pa.array([[0.0, 0.0]], pa.list_(pa.float64(), 2))})
    assert _rules(contract.validate(fixed)) == {("emb", "type")}


def test_pii_values_never_appear_in_reports() -> None:
    contract = _contract(email={"type": "string", "pattern": ".+@.+", "pii": True, "id": True})
    report = contract.validate(pa.table({"email": ["ann@x.org", "secret-name", "ann@x.org"]}))
    text = str(report.to_dict()) + str(ContractViolation(report.violations))
    assert "secret-name" not in text and "ann@x.org" not in text
    assert "<redacted>" in text and _rules(report) == {("email", "pattern"), ("email", "unique")}


def test_zero_row_batch_is_valid_and_raise_for_violations() -> None:
    contract = _contract(a={"type": "int", "min": 0}, b={"type": "category", "domain": ["x"]})
    empty = pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())})
    report = contract.validate(empty)
    assert report.ok and report.rows == 0
    with pytest.raises(ContractViolation, match="a: 1 × below min 0"):
        contract.validate(pa.table({"a": [-1], "b": ["x"]})).raise_for_violations()


def test_chunked_tables_number_rows_globally() -> None:
    contract = _contract(x={"type": "int", "max": 5})
    table = pa.Table.from_batches(
        [pa.record_batch({"x": [1, 9, 2]}), pa.record_batch({"x": [9, 3, 4]})]
    )
    (violation,) = contract.validate(table).violations
    assert violation.rows == [1, 3]


def test_report_to_dict_is_json() -> None:
    import json

    report = _contract(x={"type": "float", "max": 1}).validate(pa.table({"x": [2.0, float("inf")]}))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["ok"] is False and data["failing_rows"] == 2
    assert {v["rule"]: v["values"] for v in data["violations"]} == {"finite": ["inf"], "max": [2.0]}


# --- one row and many rows: the same code, the same answer --------------------------------------


def test_one_row_and_a_batch_agree() -> None:
    contract = _contract(
        x={"type": "float", "min": 0, "max": 1},
        c={"type": "category", "domain": ["a", "b"]},
        s={"type": "string", "pattern": "[a-z]+"},
    )
    rows = [
        {"x": 0.5, "c": "a", "s": "ok"},
        {"x": 2.0, "c": "z", "s": "OK"},
        {"x": None, "c": "b", "s": "fine"},
    ]
    batch = contract.validate(pa.Table.from_pylist(rows))
    single = [contract.validate(pa.Table.from_pylist([r])) for r in rows]
    assert {(v.field, v.rule, r) for v in batch.violations for r in v.rows} == {
        (v.field, v.rule, i) for i, rep in enumerate(single) for v in rep.violations
    }


# --- properties ----------------------------------------------------------------------------------

RULES = ("min", "max", "not_null", "finite", "domain", "pattern", "max_length", "type")


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(0, 1e6, allow_nan=False),
    inside=st.lists(st.floats(0, 1), min_size=1, max_size=20),
    broken=st.one_of(st.none(), st.sampled_from(RULES)),
    where=st.floats(0, 1),
)
def test_a_value_inside_every_rule_passes_and_one_outside_is_reported_once(
    low, width, inside, broken, where
) -> None:
    high = low + width
    contract = _contract(
        x={"type": "float", "min": low, "max": high},
        c={"type": "category", "domain": ["a", "b", "c"]},
        s={"type": "string", "pattern": "[a-z]+", "max_length": 8},
        n={"type": "int", "min": 0, "max": 10},
    )
    n = len(inside)
    columns = {
        "x": [min(max(low + f * width, low), high) for f in inside],
        "c": ["abc"[int(f * 2.999)] for f in inside],
        "s": ["word"[: 1 + int(f * 3)] for f in inside],
        "n": [int(f * 10) for f in inside],
    }
    schema = pa.schema(
        [("x", pa.float64()), ("c", pa.string()), ("s", pa.string()), ("n", pa.int64())]
    )
    assert contract.validate(pa.table(columns, schema=schema)).ok
    if broken is None:
        return
    row = min(int(where * n), n - 1)
    field, value = {
        "min": ("x", low - 1 - abs(low)),
        "max": ("x", high + 1 + abs(high)),
        "not_null": ("x", None),
        "finite": ("x", math.inf),
        "domain": ("c", "zz"),
        "pattern": ("s", "Word"),
        "max_length": ("s", "abcdefghi"),
        "type": ("n", None),  # replaced below: a fractional number in an int field
    }[broken]
    if broken == "type":
        columns["n"] = [float(v) for v in columns["n"]]
        columns["n"][row] = 2.5
        schema = schema.set(3, pa.field("n", pa.float64()))
    else:
        columns[field][row] = value
    report = contract.validate(pa.table(columns, schema=schema))
    assert len(report.violations) == 1, report.violations
    (violation,) = report.violations
    assert (violation.field, violation.rule, violation.count, violation.rows) == (
        field if broken != "type" else "n",
        broken,
        1,
        [row],
    )


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=40
    ),
    chunk=st.integers(1, 7),
)
def test_chunking_never_changes_the_report(values, chunk) -> None:
    contract = _contract(
        x={"type": "float", "min": -1, "max": 1, "nullable": True, "max_null_fraction": 0.3}
    )
    whole = contract.validate(pa.table({"x": pa.array(values, pa.float64())}))
    session = contract.session()
    for start in range(0, len(values), chunk):
        session.add(pa.table({"x": pa.array(values[start : start + chunk], pa.float64())}))
    chunked = session.finish()
    assert [(v.rule, v.count, v.rows) for v in chunked.violations] == [
        (v.rule, v.count, v.rows) for v in whole.violations
    ]
    assert chunked.failing_rows == whole.failing_rows


def test_big_batch_is_vectorized() -> None:
    """Not a timing: 200k rows with scattered bad values give exact counts and first rows."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 200_000)
    bad = rng.choice(200_000, 100, replace=False)
    x[bad] = 5.0
    report = _contract(x={"type": "float", "min": 0, "max": 1}).validate(pa.table({"x": x}))
    (violation,) = report.violations
    assert violation.count == 100 and violation.rows == sorted(bad)[:5]


def test_an_impossible_date_flags_only_its_own_row() -> None:
    contract = CompiledContract(
        DataContract(fields={"d": FieldSpec(type="date"), "t": FieldSpec(type="timestamp")})
    )
    report = contract.validate(
        pa.table(
            {
                "d": ["2024-01-01", "2024-02-30", "2024-03-01"],
                "t": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-02-30T00:00:00Z"],
            }
        )
    )
    assert {(v.field, v.rule, tuple(v.rows)) for v in report.violations} == {
        ("d", "type", (1,)),
        ("t", "type", (2,)),
    }


def test_domain_rule_agrees_for_requests_and_batches() -> None:
    """Small tables (a request) take a plain-Python path; it must report what Arrow reports."""
    contract = CompiledContract(
        DataContract(
            fields={
                "c": FieldSpec(type="category", domain=["DE", "FR"]),
                "k": FieldSpec(type="int", domain=[1, 2]),
            }
        )
    )
    c = ["DE", "XX", None, "FR", "de"] * 8
    k = [1, 3, 2, None, 2] * 8
    whole = contract.validate(pa.table({"c": c, "k": k}))
    for start in range(0, 40, 5):
        part = contract.validate(pa.table({"c": c[start : start + 5], "k": k[start : start + 5]}))
        assert {(v.field, v.rule, tuple(v.rows)) for v in part.violations} == {
            ("c", "not_null", (2,)),
            ("c", "domain", (1, 4)),
            ("k", "not_null", (3,)),
            ("k", "domain", (1,)),
        }
    assert {(v.field, v.rule, v.count) for v in whole.violations} == {
        ("c", "not_null", 8),
        ("c", "domain", 16),
        ("k", "not_null", 8),
        ("k", "domain", 8),
    }
