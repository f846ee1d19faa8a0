"""The one type table and the enumerated rule names."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import mlhandoff
from mlhandoff.contract import RULES, CompiledContract, Rule
from mlhandoff.contract.types import (
    TYPES,
    arrow_type,
    field_type,
    json_schema,
    v2_datatype,
    v2_datatype_of,
    v2_tensor,
)
from mlhandoff.render.openapi import field_schema
from mlhandoff.spec.models import DataContract, FieldSpec, FieldType, OutputField

SAMPLES = {
    "int": 3,
    "float": 0.5,
    "bool": True,
    "string": "x",
    "category": "a",
    "timestamp": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "array": [0.5, 1.0],
}


def _spec(kind: str) -> FieldSpec:
    extra = {"length": 2} if kind == "array" else {"timezone": "UTC"} if kind == "timestamp" else {}
    return FieldSpec.model_validate({"type": kind, **extra})


def test_the_table_has_every_contract_type() -> None:
    assert set(TYPES) == set(typing.get_args(FieldType)) == set(SAMPLES)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_type_round_trips_through_arrow_and_validates(kind: str) -> None:
    spec = _spec(kind)
    contract = CompiledContract(DataContract(fields={"v": spec}))
    table, report = contract.validate_json([{"v": SAMPLES[kind]}])
    assert report.ok, report.violations
    assert table.schema.field("v").type == arrow_type(spec)
    expected = "string" if kind == "category" else kind  # a category is text in Arrow
    assert field_type(arrow_type(spec)) == expected
    nulls = contract.validate(pa.table({"v": pa.nulls(1, arrow_type(spec))}))
    assert [v.rule for v in nulls.violations] == ["not_null"]
    column = table.column("v").combine_chunks()
    values = pc.list_flatten(column) if kind == "array" else column
    assert values.to_numpy(zero_copy_only=False).dtype == TYPES[kind].numpy


def test_array_fields_in_json_schema_and_the_v2_protocol() -> None:
    """Regression: GET /v2/models/{name} answered 500 for an array field (no v2 entry)."""
    spec = FieldSpec(type="array", length=64, min=0, max=1)
    assert v2_datatype(spec) == "FP64"
    assert v2_tensor("pixels", spec) == {"name": "pixels", "datatype": "FP64", "shape": [-1, 64]}
    assert json_schema(spec) == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 64,
        "maxItems": 64,
    }
    assert field_schema(spec)["items"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert v2_tensor("score", OutputField(type="float")) == {
        "name": "score",
        "datatype": "FP64",
        "shape": [-1],
    }


@pytest.mark.parametrize(
    ("arrow", "v2"),
    [
        (pa.float64(), "FP64"),
        (pa.float32(), "FP32"),
        (pa.int64(), "INT64"),
        (pa.int32(), "INT32"),
        (pa.uint8(), "UINT8"),
        (pa.bool_(), "BOOL"),
        (pa.string(), "BYTES"),
        (pa.timestamp("us", tz="UTC"), "BYTES"),
        (pa.list_(pa.float32()), "FP32"),
    ],
)
def test_v2_datatype_of_model_outputs(arrow: pa.DataType, v2: str) -> None:
    assert v2_datatype_of(arrow) == v2


def test_every_v2_datatype_is_one_the_protocol_defines() -> None:
    protocol = {"BOOL", "BYTES", "FP16", "FP32", "FP64"}
    protocol |= {f"{s}INT{b}" for s in ("", "U") for b in (8, 16, 32, 64)}
    assert {t.v2 for t in TYPES.values()} <= protocol


# --- rule names -----------------------------------------------------------------------------------


def test_every_rule_in_the_list_is_produced_and_nothing_else() -> None:
    contract = CompiledContract(
        DataContract.model_validate(
            {
                "fields": {
                    "req": {"type": "int"},
                    "x": {
                        "type": "float",
                        "min": 0,
                        "max": 1,
                        "nullable": True,
                        "max_null_fraction": 0.1,
                    },
                    "n": {"type": "int"},
                    "c": {"type": "category", "domain": ["a"]},
                    "u": {"type": "category", "domain": ["a"], "unseen": "allow"},
                    "s": {"type": "string", "pattern": "[a-z]+", "min_length": 2, "max_length": 3},
                    "t": {"type": "timestamp", "timezone": "UTC"},
                    "id": {"type": "string", "id": True},
                    "v": {"type": "array", "length": 2},
                }
            }
        )
    )
    table = pa.table(
        {
            "x": [-1.0, 2.0, float("inf"), None, 0.5],
            "n": pa.array([None, 1, 2, 3, 4], pa.int64()),
            "c": ["a", "z", "a", "a", "a"],
            "u": ["a", "z", "a", "a", "a"],
            "s": ["ab", "A1", "a", "abcd", "ab"],
            "t": pa.array([0, 1, 2, 3, 4], pa.timestamp("s")),
            "id": ["1", "1", "2", "3", "4"],
            "v": [[0.0, 1.0], [0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]],
            "extra": [1, 2, 3, 4, 5],
        }
    )
    report = contract.validate(table)
    _, typed = contract.validate_json([{"x": "text"}])
    produced = {v.rule for v in [*report.violations, *report.notices, *typed.violations]}
    assert produced == set(RULES) == {rule.value for rule in Rule}
    assert all(type(v.rule) is str for v in report.violations)  # plain names in JSON and labels


def test_violations_in_the_source_name_only_listed_rules() -> None:
    """Wherever a Violation is built with a literal rule name, the name is in the list."""
    root = Path(mlhandoff.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "")
                in {
                    "Violation",
                    "FieldViolation",
                    "Hit",
                }
            ):
                continue
            rule = node.args[1] if len(node.args) > 1 else None
            rule = rule or next((k.value for k in node.keywords if k.arg == "rule"), None)
            if isinstance(rule, ast.Constant):
                assert rule.value in RULES, f"{path}:{node.lineno}: rule {rule.value!r}"
            elif isinstance(rule, ast.Attribute) and getattr(rule.value, "id", "") == "Rule":
                assert rule.attr in Rule.__members__, f"{path}:{node.lineno}"
