"""Inferring a data contract from sample data, for ``mlhandoff init``.

What the sample shows (types, observed ranges, nulls, small categorical domains, timezones, id-like
columns) is written down; what only a person knows (units, descriptions, provenance) is left as
TODO for the checklist to chase.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.errors import InputError
from mlhandoff.spec.models import FieldSpec, FieldType

#: A string column with at most this many distinct values becomes a category with a domain.
MAX_DOMAIN = 50
_ID_NAME = re.compile(r"(^|_)(id|uuid|key)$", re.IGNORECASE)


def field_type(arrow_type: pa.DataType) -> FieldType | None:
    """The contract type that an Arrow column type maps to (None: unsupported)."""
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_dictionary(arrow_type):
        return "category"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    return None


def infer_fields(table: pa.Table, *, label: str | None = None) -> dict[str, FieldSpec]:
    """One FieldSpec per column of ``table`` except the label."""
    if table.num_rows == 0:
        raise InputError("sample has 0 rows: a contract cannot be inferred from an empty sample")
    if label is not None and label not in table.column_names:
        raise InputError(
            f"label column '{label}' is not in the sample; columns are: {', '.join(table.column_names)}"
        )
    fields: dict[str, FieldSpec] = {}
    for name in table.column_names:
        if name == label:
            continue
        fields[name] = _infer_field(name, table.column(name))
    return fields


def _infer_field(name: str, column: pa.ChunkedArray) -> FieldSpec:
    kind = field_type(column.type)
    if kind is None:
        raise InputError(
            f"column '{name}' has type {column.type}, which a data contract cannot describe; "
            "use numbers, booleans, strings, categories, dates or timestamps"
        )
    rows = len(column)
    nulls = column.null_count
    spec: dict[str, Any] = {"type": kind, "nullable": nulls > 0}
    if nulls:
        spec["max_null_fraction"] = min(1.0, _round_up(2 * nulls / rows))
    valid = column.drop_null()
    distinct = pc.count_distinct(valid).as_py() if len(valid) else 0
    looks_like_id = kind in ("int", "string") and distinct == len(valid) == rows and len(valid) > 1
    if looks_like_id and (kind == "string" or _ID_NAME.search(name)):
        spec["id"] = True
        spec["description"] = "Identifier; not a model feature."
        return FieldSpec.model_validate(spec)
    if kind in ("int", "float") and len(valid):
        finite = valid.filter(pc.is_finite(valid)) if kind == "float" else valid
        if len(finite):
            bounds = pc.min_max(finite)
            spec["min"], spec["max"] = (
                _number(bounds["min"].as_py()),
                _number(bounds["max"].as_py()),
            )
    elif kind in ("string", "category") and len(valid):
        values = valid.dictionary_decode() if pa.types.is_dictionary(valid.type) else valid
        if distinct <= MAX_DOMAIN:
            spec["type"] = "category"
            spec["domain"] = sorted(str(v) for v in pc.unique(values).to_pylist())
    elif kind == "timestamp":
        tz = column.type.tz
        spec["timezone"] = tz
        if tz is None:
            spec["description"] = "TODO: naive timestamps: state their timezone"
    return FieldSpec.model_validate(spec)


def _number(value: Any) -> float | int:
    return int(value) if isinstance(value, int) else float(value)


def _round_up(fraction: float) -> float:
    return math.ceil(fraction * 1000) / 1000
