"""The contract's type names and what each one is in Arrow, numpy, JSON Schema and the Open
Inference Protocol (v2): one table, read by the reader, the validator, inference, the output
contract, the OpenAPI document and the server, so that no two of them can drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.spec.models import FieldSpec, FieldType, OutputField

__all__ = [
    "TYPES",
    "ContractType",
    "arrow_type",
    "field_type",
    "is_list",
    "json_schema",
    "v2_datatype",
    "v2_datatype_of",
    "v2_tensor",
]


@dataclass(frozen=True)
class ContractType:
    """One contract type. ``arrow`` and ``numpy`` describe one value (an array field: one
    element; a timestamp: naive, see :func:`arrow_type`); ``json_schema`` is the fragment of one
    JSON value; ``v2`` is the Open Inference Protocol tensor datatype."""

    name: FieldType
    arrow: pa.DataType
    numpy: np.dtype[Any]
    json_schema: MappingProxyType[str, Any]
    v2: str


def _entry(
    name: FieldType, arrow: pa.DataType, numpy: str, v2: str, **schema: Any
) -> tuple[FieldType, ContractType]:
    return name, ContractType(name, arrow, np.dtype(numpy), MappingProxyType(schema), v2)


#: Every contract type, by name. Arrays are arrays of numbers (float64 elements) of a fixed
#: ``length``: in v2 a FP64 tensor of shape [-1, length].
TYPES: MappingProxyType[FieldType, ContractType] = MappingProxyType(
    dict(
        [
            _entry("int", pa.int64(), "int64", "INT64", type="integer"),
            _entry("float", pa.float64(), "float64", "FP64", type="number"),
            _entry("bool", pa.bool_(), "bool", "BOOL", type="boolean"),
            _entry("string", pa.string(), "object", "BYTES", type="string"),
            _entry("category", pa.string(), "object", "BYTES", type="string"),
            _entry(
                "timestamp",
                pa.timestamp("us"),
                "datetime64[us]",
                "BYTES",
                type="string",
                format="date-time",
            ),
            _entry("date", pa.date32(), "datetime64[D]", "BYTES", type="string", format="date"),
            _entry("array", pa.float64(), "float64", "FP64", type="array"),
        ]
    )
)

AnyField = FieldSpec | OutputField


def arrow_type(field: AnyField) -> pa.DataType:
    """The Arrow type a field's values have once validated: timestamps in the field's timezone
    (naive without one), arrays as lists of float64."""
    if field.type == "timestamp":
        return pa.timestamp("us", tz=getattr(field, "timezone", None))
    if field.type == "array":
        return pa.list_(TYPES["array"].arrow)
    return TYPES[field.type].arrow


def json_schema(field: AnyField) -> dict[str, Any]:
    """The JSON Schema of one value of the field's type (no bounds, domain or nullability)."""
    schema = dict(TYPES[field.type].json_schema)
    if field.type == "array":
        schema["items"] = {"type": "number"}
        length = getattr(field, "length", None)
        if length:
            schema["minItems"] = schema["maxItems"] = length
    return schema


def v2_datatype(field: AnyField) -> str:
    """The Open Inference Protocol (v2) datatype of a field's tensor (arrays: their elements')."""
    return TYPES[field.type].v2


def v2_tensor(name: str, field: AnyField) -> dict[str, Any]:
    """A field's tensor metadata for ``GET /v2/models/{name}``: one row per record, and an
    array field's ``length`` values as the second dimension."""
    length = getattr(field, "length", None) if field.type == "array" else None
    shape = [-1, length] if length else [-1]
    return {"name": name, "datatype": v2_datatype(field), "shape": shape}


def v2_datatype_of(arrow: pa.DataType) -> str:
    """The v2 datatype of an Arrow column (a model's outputs); lists: their elements'; BYTES for
    anything v2 has no number type for (text, times)."""
    if is_list(arrow):
        return v2_datatype_of(arrow.value_type)
    if pa.types.is_boolean(arrow):
        return "BOOL"
    if pa.types.is_integer(arrow):
        return f"{'UINT' if pa.types.is_unsigned_integer(arrow) else 'INT'}{arrow.bit_width}"
    if pa.types.is_floating(arrow):
        return f"FP{arrow.bit_width}"
    return "BYTES"


def is_list(arrow: pa.DataType) -> bool:
    """Whether an Arrow type holds a list per row (variable, large or fixed-size)."""
    return (
        pa.types.is_list(arrow)
        or pa.types.is_large_list(arrow)
        or pa.types.is_fixed_size_list(arrow)
    )


def field_type(arrow: pa.DataType) -> FieldType | None:
    """The contract type an Arrow column type maps to (None: a contract cannot describe it)."""
    if pa.types.is_boolean(arrow):
        return "bool"
    if pa.types.is_integer(arrow):
        return "int"
    if pa.types.is_floating(arrow) or pa.types.is_decimal(arrow):
        return "float"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_dictionary(arrow):
        return "category"
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "string"
    if is_list(arrow):
        item = arrow.value_type
        if pa.types.is_integer(item) or pa.types.is_floating(item):
            return "array"
    return None
