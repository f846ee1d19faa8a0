"""Values to the contract's types where the source has no type of its own for them.

A CSV file holds only text, and JSON has no timestamps or dates: :func:`typed_text` turns such
a column into the field's Arrow type when every value converts. When one does not, the column is
left as it was and the validator reports the rows that break the type (never a mid-file
conversion error, never a silently changed value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.contract.report import Hit, Rule
from mlhandoff.contract.types import arrow_type
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract, FieldSpec

#: Text read as a boolean (in any case).
TRUE, FALSE = ("true", "1"), ("false", "0")
_CAST_FAILED = (pa.ArrowInvalid, pa.ArrowNotImplementedError)
_JSON_FAILED = (*_CAST_FAILED, pa.ArrowTypeError, OverflowError, TypeError, ValueError)
#: Types JSON and CSV carry as text, and types that are text.
TIMES, TEXT = ("timestamp", "date"), ("string", "category")


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


def iso_text(arr: pa.Array) -> pa.Array:
    """Timestamp text as Arrow's ISO 8601 parser reads it: RFC 3339's lower-case ``t``/``z``
    upper-cased, fractions past the microsecond (the contract's resolution) cut off."""
    upper = pc.utf8_upper(arr)
    return pc.replace_substring_regex(upper, pattern=r"(\.\d{6})\d+", replacement=r"\1")


def _timestamps(arr: pa.Array, field: FieldSpec) -> pa.Array:
    arr = iso_text(arr)
    try:
        instants = pc.cast(arr, pa.timestamp("us", tz="UTC"))
    except _CAST_FAILED:
        return pc.cast(arr, pa.timestamp("us"))
    return instants.cast(arrow_type(field)) if field.timezone else instants


# --- JSON values (request bodies) ---------------------------------------------------------------

#: A request body's data: records, or columns of values (MLflow ``dataframe_split``, v2 tensors).
JsonData = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


def json_table(data: JsonData, contract: DataContract) -> tuple[pa.Table, list[Hit]]:
    """JSON values typed as the contract says, and a ``type`` hit per field for the values of
    the wrong JSON type (with their record indices), each replaced by a null so that every other
    rule still runs on every record. A key absent from a record is a null there; a column the
    contract does not name is kept (as nulls) for the validator to report."""
    columns = data if isinstance(data, Mapping) else _records_to_columns(data)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InputError(f"columns have different lengths: {sorted(lengths)}")
    rows = lengths.pop() if lengths else 0
    arrays: dict[str, pa.Array] = {}
    hits: list[Hit] = []
    for name, values in columns.items():
        spec = contract.fields.get(name)
        if spec is None:
            arrays[name] = pa.nulls(rows)
            continue
        arrays[name], hit = _json_column(name, list(values), spec)
        if hit is not None:
            hits.append(hit)
    return pa.table(arrays) if arrays else pa.table({}), hits


def _records_to_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    if len(records) == 1:
        return {k: [v] for k, v in records[0].items()}
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    return {k: [r.get(k) for r in records] for k in keys}


def _json_column(name: str, values: list[Any], field: FieldSpec) -> tuple[pa.Array, Hit | None]:
    """One column of JSON values as the field's Arrow type (times as text, typed when every
    value is a valid time), and the hit for values of the wrong JSON type."""
    kind = field.type
    target = pa.string() if kind in TIMES else arrow_type(field)
    if kind in ("string", "category"):  # a category spelled as a numeric code
        values = [str(v) if type(v) is int else v for v in values]
    elif kind == "int":  # NaN (a JSON client's missing value) is a null, as in files
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    array = _array(values, kind, target)
    bad: list[int] = []
    if array is None:
        bad = [i for i, v in enumerate(values) if not _fits(v, kind, target)]
        wrong = set(bad)
        array = pa.array([None if i in wrong else v for i, v in enumerate(values)], type=target)
    if kind in TIMES:
        typed = typed_text(array, field)
        array = array if typed is None else typed
    if not bad:
        return array, None
    shown = np.empty(len(bad), dtype=object)
    for j, i in enumerate(bad):
        shown[j] = values[i]
    got = ", ".join(sorted({_json_name(v, kind) for v in shown}))
    what = f"expected {_EXPECTED.get(kind, kind)}, got {got}"
    return array, Hit(name, Rule.TYPE, what, np.array(bad), pa.nulls(0), shown=shown)


def _array(values: list[Any], kind: str, target: pa.DataType) -> pa.Array | None:
    """The values as one Arrow array, or None when some value does not fit."""
    if any(_never_fits(v, kind) for v in values):
        return None
    try:
        return pa.array(values, type=target)
    except _JSON_FAILED:
        return None


def _never_fits(value: Any, kind: str) -> bool:
    """Values Arrow would convert but the contract refuses: booleans as numbers, and fractions
    as ints (Arrow truncates 2.5 to 2)."""
    if kind == "int":
        return type(value) is bool or (isinstance(value, float) and not value.is_integer())
    if kind == "float":
        return type(value) is bool
    if kind == "array":
        return type(value) is bool or (
            isinstance(value, list) and any(type(e) is bool for e in value)
        )
    return False


def _fits(value: Any, kind: str, target: pa.DataType) -> bool:
    return value is None or _array([value], kind, target) is not None


_EXPECTED = {
    "timestamp": "an ISO 8601 timestamp (text)",
    "date": "an ISO 8601 date (text)",
    "array": "an array of numbers",
}


def _json_name(value: Any, kind: str) -> str:
    """What a JSON value is, in JSON's words (and why a number does not fit an int)."""
    if type(value) is bool:
        return "a boolean"
    if isinstance(value, int | float):
        if kind == "int":
            return (
                "a number with a fraction" if isinstance(value, float) else "a number out of range"
            )
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array holding a non-number" if kind == "array" else "an array"
    return "an object"
