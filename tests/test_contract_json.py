"""Request bodies (JSON records or columns) validated as a whole: every violation of every record,
each with its record index, bounded, with a total."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mlhandoff.contract import CompiledContract
from mlhandoff.spec.models import DataContract

CONTRACT = DataContract.model_validate(
    {
        "fields": {
            "f": {"type": "float"},
            "g": {"type": "float", "min": 0},
            "h": {"type": "int", "nullable": True},
            "c": {"type": "category", "domain": ["1", "2", "a"]},
            "t": {"type": "timestamp", "timezone": "UTC", "nullable": True},
            "v": {"type": "array", "length": 2, "nullable": True},
        }
    }
)
VALID = {"f": 1.5, "g": 2.0, "h": 3, "c": "a", "t": "2026-01-01T00:00:00Z", "v": [0.0, 1.0]}


def _found(report: Any) -> dict[tuple[str, str], tuple[int, list[int], list[Any]]]:
    return {(v.field, v.rule): (v.count, v.rows, v.values) for v in report.violations}


def test_one_record_reports_its_type_missing_extra_and_range_violations_together() -> None:
    """Regression: the type violation alone was reported; the others were hidden."""
    record = {"f": "x", "g": -3, "extra": 1, "c": "a"}  # "k" is missing
    contract = CompiledContract(
        DataContract.model_validate(
            {
                **CONTRACT.model_dump(),
                "fields": {**CONTRACT.model_dump()["fields"], "k": {"type": "int"}},
            }
        )
    )
    _, report = contract.validate_json([record])
    found = _found(report)
    assert found[("f", "type")] == (1, [0], ["x"])
    assert found[("g", "min")] == (1, [0], [-3.0])
    assert "k" in next(v.message for v in report.violations if v.rule == "missing_column")
    assert "extra" in next(v.message for v in report.violations if v.rule == "unexpected_column")
    assert [v.message for v in report.violations if v.rule == "type"] == [
        "1 × expected float, got a string (row 0: 'x')"
    ]


def test_a_batch_reports_each_violation_with_its_record_index_and_true_count() -> None:
    """Regression: [valid, {"f": "x"}, {"g": -3}] got "expected float, got float", count 3 and
    no rows, and the range violation was hidden."""
    contract = CompiledContract(
        DataContract.model_validate(
            {"fields": {"f": {"type": "float"}, "g": {"type": "float", "min": 0}}}
        )
    )
    table, report = contract.validate_json([{"f": 1.0, "g": 1.0}, {"f": "x"}, {"g": -3}])
    assert _found(report) == {
        ("f", "type"): (1, [1], ["x"]),
        ("f", "not_null"): (1, [2], [None]),  # absent from record 2
        ("g", "not_null"): (1, [1], [None]),
        ("g", "min"): (1, [2], [-3.0]),
    }
    type_violation = next(v for v in report.violations if v.rule == "type")
    assert type_violation.message == "1 × expected float, got a string (row 1: 'x')"
    assert report.failing_rows == 2 and report.rows == 3
    assert table.column("f").type == pa.float64()


def test_many_bad_records_are_bounded_with_a_total() -> None:
    contract = CompiledContract(CONTRACT, max_examples=4)
    records = [{**VALID, "g": -i - 1, "f": "no" if i % 2 else 1.0} for i in range(50)]
    _, report = contract.validate_json(records)
    found = _found(report)
    assert found[("g", "min")][:2] == (50, [0, 1, 2, 3])
    assert found[("f", "type")][:2] == (25, [1, 3, 5, 7])
    assert report.failing_rows == 50


def test_columns_mix_json_types_and_each_bad_value_is_located() -> None:
    columns = {
        "f": [1.0, True, "x", None, {"a": 1}],
        "g": [1, 2, -1, 3, 4],
        "h": [1, 2.5, float("nan"), None, 10**30],
        "c": ["a", 1, 2.0, "z", None],
        "t": ["2026-01-01T00:00:00Z", 5, "2026-01-01T00:00:00", "later", None],
        "v": [[1, 2], [1, True], "no", [1, 2, 3], None],
    }
    _, report = CompiledContract(CONTRACT).validate_json(columns)
    found = _found(report)
    assert found[("f", "type")] == (3, [1, 2, 4], [True, "x", {"a": 1}])
    assert found[("f", "not_null")][:2] == (1, [3])
    assert found[("g", "min")][:2] == (1, [2])
    assert found[("h", "type")] == (2, [1, 4], [2.5, 10**30])  # NaN is a null in an int field
    assert found[("c", "type")][:2] == (1, [2])  # 1 is the code "1"; 2.0 is no code
    assert found[("c", "domain")][:2] == (1, [3])
    assert found[("t", "type")][:2] == (2, [1, 3])
    assert found[("t", "timezone")][:2] == (1, [2])
    assert found[("v", "type")][:2] == (2, [1, 2])
    assert found[("v", "length")][:2] == (1, [3])
    messages = {(v.field, v.rule): v.message for v in report.violations}
    assert "expected float, got a boolean, a string, an object" in messages[("f", "type")]
    assert "a number out of range, a number with a fraction" in messages[("h", "type")]


def test_valid_json_is_typed_as_the_contract_says() -> None:
    records = [VALID, {**VALID, "c": 1, "h": float("nan"), "t": "2026-01-01T01:00:00+01:00"}]
    table, report = CompiledContract(CONTRACT).validate_json(records)
    assert report.ok, report.violations
    assert table.column("c").to_pylist() == ["a", "1"]
    assert table.column("h").to_pylist() == [3, None]
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert table.column("t").to_pylist() == [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * 2
    assert table.schema.field("v").type == pa.list_(pa.float64())


def test_pii_values_of_wrong_type_are_redacted() -> None:
    contract = CompiledContract(
        DataContract.model_validate({"fields": {"email": {"type": "int", "pii": True}}})
    )
    _, report = contract.validate_json([{"email": "someone@example.com"}])
    (violation,) = report.violations
    assert violation.values == ["<redacted>"] and "example.com" not in violation.message


_VALUES = {
    "f": st.none() | st.floats(-5, 5, allow_nan=False) | st.integers(-5, 5),
    "g": st.none() | st.floats(-5, 5, allow_nan=False),
    "h": st.none() | st.integers(-(2**40), 2**40),
    "c": st.none() | st.sampled_from(["1", "2", "a", "zz"]),
    "t": st.none()
    | st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2100, 1, 1)).map(
        lambda v: v.isoformat() + "Z"
    ),
    "v": st.none() | st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=3),
}


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.fixed_dictionaries({}, optional=_VALUES),  # any subset of the fields
        min_size=1,
        max_size=8,
    )
)
def test_a_batch_reports_what_each_record_alone_would_at_its_index(
    records: list[dict[str, Any]],
) -> None:
    """A batch's row-level violations are those of its records sent one by one, at their
    index (a key absent from a record is a null there, and a missing column alone)."""
    contract = CompiledContract(CONTRACT, max_examples=10)  # every row shown
    records = [r or {"f": 1.0} for r in records]
    _, report = contract.validate_json(records)
    row_level = {(v.field, v.rule, r) for v in report.violations for r in v.rows if v.rows}
    one_by_one = set()
    for i, record in enumerate(records):
        _, single = contract.validate_json([record])
        one_by_one |= {(v.field, v.rule, i) for v in single.violations if v.rows}
    absent = {
        (n, "not_null", i) for i, r in enumerate(records) for n in CONTRACT.fields if n not in r
    }
    assert row_level - absent == one_by_one - absent


@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.just(dt.UTC),
    ),
    st.integers(0, 999),
    st.sampled_from(["T", "t"]),
    st.sampled_from(["Z", "z", "+00:00"]),
)
@settings(max_examples=60, deadline=None)
def test_rfc3339_spellings_are_one_instant(when: dt.datetime, nanos: int, t: str, z: str) -> None:
    """What the OpenAPI document's ``date-time`` allows is accepted: lower-case ``t``/``z`` and
    fractions past the microsecond (cut to the contract's microsecond resolution)."""
    contract = CompiledContract(CONTRACT)
    naive = when.replace(tzinfo=None).isoformat(timespec="microseconds")
    text = naive.replace("T", t) + f"{nanos:03d}{z}"
    table, report = contract.validate_json([{**VALID, "t": text}])
    assert report.violations == []
    assert table.column("t")[0].as_py() == when
