"""Inferring a data contract from sample data, for ``mlhandoff init``.

What the sample shows is written down, with the evidence in the field's description: types,
ranges (the 0.1–99.9 % quantiles widened by 10 % of their spread, always covering every observed
value), nulls, categorical domains (by cardinality), timezones, ids, fixed-length arrays, and
features that alone predict the label (leakage). What only a person knows (units, meaning,
provenance) stays TODO for the checklist to chase.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.contract.types import field_type
from mlhandoff.errors import InputError
from mlhandoff.spec.models import FieldSpec

#: A string column with at most this many distinct values (some repeated) becomes a category.
MAX_DOMAIN = 50
#: Quantiles the inferred range starts from, and the share of their spread added on each side.
QUANTILES = (0.001, 0.999)
MARGIN = 0.10
_TODO = "TODO: what it is, where it comes from."
_ID_NAME = re.compile(r"(^|_)(id|uuid|key)$", re.IGNORECASE)
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"


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
        fields[name] = FieldSpec.model_validate(_infer_field(name, table.column(name)))
    if label is not None:
        _flag_leakage(table, label, fields)
    return fields


def _infer_field(name: str, column: pa.ChunkedArray) -> dict[str, Any]:
    kind = field_type(column.type)
    if kind is None:
        raise InputError(
            f"column '{name}' has type {column.type}, which a data contract cannot describe; "
            "use numbers, booleans, strings, categories, dates, timestamps or arrays of numbers"
        )
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if kind == "string" and _all_match(column, _ISO_WITH_OFFSET):
        column, kind = pc.cast(column, pa.timestamp("us", tz="UTC")), "timestamp"
    rows = len(column)
    nulls = column.null_count
    if kind == "float":
        nulls += pc.sum(pc.is_nan(column)).as_py() or 0
    spec: dict[str, Any] = {"type": kind, "nullable": nulls > 0}
    if nulls:
        spec["max_null_fraction"] = min(1.0, _round_up(2 * nulls / rows))
    valid = column.drop_null()
    if kind == "array":
        return {**spec, **_array(column)}
    distinct = pc.count_distinct(valid).as_py() if len(valid) else 0
    unique = distinct == len(valid) == rows and rows > 1
    if unique and (kind == "string" or (kind == "int" and _ID_NAME.search(name))):
        spec["id"] = True
        spec["description"] = "Identifier; not a model feature."
        if kind == "string" and _all_match(valid, _UUID):
            spec["pattern"] = _UUID[1:-1]
        return spec
    if kind in ("int", "float") and len(valid):
        spec.update(_range(valid, kind, rows))
    elif kind in ("string", "category") and len(valid):
        if distinct <= MAX_DOMAIN and distinct < len(valid):
            spec["type"] = "category"
            spec["domain"] = sorted(str(v) for v in pc.unique(valid).to_pylist())
            spec["description"] = (
                f"{_TODO} Inferred: {distinct} distinct values in {rows} rows; "
                "values outside the domain are rejected (see unseen)."
            )
    elif kind == "timestamp":
        tz = column.type.tz
        spec["timezone"] = tz
        if tz is None:
            spec["description"] = "TODO: naive timestamps: state their timezone"
    return spec


def _range(valid: pa.ChunkedArray, kind: str, rows: int) -> dict[str, Any]:
    """Quantile-based bounds with a margin, covering every observed value; evidence described."""
    values = valid.to_numpy().astype(float)
    values = values[np.isfinite(values)]
    if not len(values):
        return {}
    seen_lo, seen_hi = float(values.min()), float(values.max())
    q_lo, q_hi = (float(q) for q in np.quantile(values, QUANTILES))
    evidence = (
        f"Inferred from {rows} rows: observed [{seen_lo:g}, {seen_hi:g}], "
        f"p{QUANTILES[0] * 100:g}-p{QUANTILES[1] * 100:g} [{q_lo:g}, {q_hi:g}]"
    )
    if kind == "int" and len(np.unique(values)) == seen_hi - seen_lo + 1:
        return {
            "min": int(seen_lo),
            "max": int(seen_hi),
            "description": f"{_TODO} {evidence}; every integer in between occurs, so that is "
            "taken as the full range.",
        }
    spread = q_hi - q_lo
    lo = min(q_lo - MARGIN * spread, seen_lo)
    hi = max(q_hi + MARGIN * spread, seen_hi)
    if seen_lo >= 0:
        lo = max(lo, 0.0)
    if seen_hi <= 0:
        hi = min(hi, 0.0)
    if kind == "float" and seen_lo >= 0 and seen_hi <= 1:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    lo, hi = _nice(lo, hi, spread)
    if kind == "int":
        lo, hi = math.floor(lo), math.ceil(hi)
    return {
        "min": int(lo) if kind == "int" else lo,
        "max": int(hi) if kind == "int" else hi,
        "description": f"{_TODO} {evidence}; range = those quantiles widened by "
        f"{MARGIN:.0%} of their spread, covering every observed value.",
    }


def _nice(lo: float, hi: float, spread: float) -> tuple[float, float]:
    """Bounds rounded outward to about 1 % of the spread, so the spec reads cleanly."""
    if spread <= 0 or not math.isfinite(spread):
        return lo, hi
    step = 10 ** math.floor(math.log10(spread / 100))
    return (
        float(round(math.floor(lo / step) * step, 12)),
        float(round(math.ceil(hi / step) * step, 12)),
    )


def _array(column: pa.ChunkedArray) -> dict[str, Any]:
    sizes = pc.list_value_length(column).drop_null()
    if not len(sizes):
        return {}
    bounds = pc.min_max(sizes)
    if bounds["min"].as_py() != bounds["max"].as_py():
        raise InputError(
            f"array column has rows of {bounds['min'].as_py()} to {bounds['max'].as_py()} "
            "values; an array field has a fixed length (pad or truncate them)"
        )
    return {"length": int(bounds["min"].as_py())}


def _all_match(column: pa.ChunkedArray, pattern: str) -> bool:
    valid = column.drop_null()
    if not len(valid):
        return False
    return bool(pc.all(pc.match_substring_regex(valid, pattern=pattern)).as_py())


def _flag_leakage(table: pa.Table, label: str, fields: dict[str, FieldSpec]) -> None:
    """Mark features that alone predict the label, or are named after it, as leakage risks."""
    from mlhandoff.contract.leakage import feature_leakage

    from_data = {f.field: f.detail for f in feature_leakage(table, label) if f.field in fields}
    for name, spec in fields.items():
        if name in from_data:
            spec.leakage_risk = f"TODO: review: {from_data[name]}"
        elif label.lower() in name.lower() and not spec.id:
            spec.leakage_risk = (
                f"TODO: review: its name contains the label's ('{label}'); check that it is "
                "known at prediction time"
            )


def _round_up(fraction: float) -> float:
    return math.ceil(fraction * 1000) / 1000
