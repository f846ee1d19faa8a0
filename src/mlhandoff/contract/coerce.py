"""Values to the contract's types where the source has no type of its own for them.

A CSV file holds only text, and JSON has no timestamps or dates: :func:`typed_text` turns such
a column into the field's Arrow type when every value converts. When one does not, the column is
left as it was and the validator reports the rows that break the type (never a mid-file
conversion error, never a silently changed value).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.contract.types import arrow_type
from mlhandoff.spec.models import FieldSpec

#: Text read as a boolean (in any case).
TRUE, FALSE = ("true", "1"), ("false", "0")
_CAST_FAILED = (pa.ArrowInvalid, pa.ArrowNotImplementedError)


def is_text(t: pa.DataType) -> bool:
    """Whether an Arrow type holds text (string, large string or string view)."""
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def typed_text(arr: pa.Array, field: FieldSpec) -> pa.Array | None:
    """A text column as ``field``'s type; None when some value does not convert.

    What converts is what the validator reads from text: numbers (an int field's whole numbers
    written as ``3.0`` too; ``nan`` is a null there), ``true/false/1/0`` in any case, ISO 8601
    dates, and ISO 8601 timestamps that all carry an offset (kept as instants in the field's
    timezone, else UTC) or all carry none (naive).
    """
    try:
        if field.type == "int":
            return _whole_numbers(arr)
        if field.type == "float":
            return pc.cast(arr, pa.float64())
        if field.type == "bool":
            return _booleans(arr)
        if field.type == "timestamp":
            return _timestamps(arr, field)
        if field.type == "date":
            return pc.cast(arr, pa.date32())
    except _CAST_FAILED:
        return None
    return None


def _whole_numbers(arr: pa.Array) -> pa.Array:
    try:
        return pc.cast(arr, pa.int64())
    except _CAST_FAILED:
        numbers = pc.cast(arr, pa.float64())
    numbers = pc.if_else(pc.is_nan(numbers), pa.scalar(None, pa.float64()), numbers)
    try:
        return pc.cast(numbers, pa.int64())
    except _CAST_FAILED:
        return numbers  # fractions or infinities: the validator reports those rows


def _booleans(arr: pa.Array) -> pa.Array:
    lower = pc.utf8_lower(arr)
    known = pc.is_in(lower, value_set=pa.array([*TRUE, *FALSE]))
    if pc.any(pc.and_(pc.invert(known), pc.is_valid(arr))).as_py():
        raise pa.ArrowInvalid("not a boolean")
    truth = pc.is_in(lower, value_set=pa.array(TRUE))
    return pc.if_else(pc.is_valid(arr), truth, pa.scalar(None, pa.bool_()))


def _timestamps(arr: pa.Array, field: FieldSpec) -> pa.Array:
    try:
        instants = pc.cast(arr, pa.timestamp("us", tz="UTC"))
    except _CAST_FAILED:
        return pc.cast(arr, pa.timestamp("us"))
    return instants.cast(arrow_type(field)) if field.timezone else instants
