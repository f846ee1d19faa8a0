"""What the compiler's parts share: the refusal, the column kinds, plain-data helpers.

Columns flow through the compiled form in two kinds: numbers (a float64 numpy array, NaN for a
missing value) and text (a pyarrow string array, null for a missing value). Every part says at
compile time which kinds it takes and gives, so a model that would need anything else is
refused before pack, never at the first request.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pyarrow as pa

Kind = Literal["number", "text"]
NUMBER: Kind = "number"
TEXT: Kind = "text"

#: One column on its way to the trees.
Column = np.ndarray | pa.Array


class NotCompilable(Exception):
    """The model (or one of its steps) has no compiled form; the message says which and why."""


def kind_of(value: Any) -> Kind:
    """A kind read back from JSON; ValueError for anything else."""
    if value not in (NUMBER, TEXT):
        raise ValueError(f"kind {value!r}")
    return NUMBER if value == NUMBER else TEXT


def plain_float(value: float) -> float | None:
    """A float for JSON (NaN as null: the compiled form is strict JSON)."""
    return None if math.isnan(value) else float(value)


def from_plain(value: float | None) -> float:
    return math.nan if value is None else float(value)


def plain_values(values: Any) -> tuple[Kind, list[Any]]:
    """Fitted categories or fill values as JSON: their kind and the values (NaN as null)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iufb":
        return NUMBER, [plain_float(float(v)) for v in arr]
    if arr.dtype.kind in "OU" and all(isinstance(v, str) or _is_missing(v) for v in arr):
        return TEXT, [None if _is_missing(v) else str(v) for v in arr]
    if arr.dtype.kind == "O" and all(_is_number(v) or _is_missing(v) for v in arr):
        return NUMBER, [None if _is_missing(v) else float(v) for v in arr]
    raise NotCompilable(
        f"values of type {arr.dtype} ({_first(arr)!r}) are neither text nor numbers"
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating | bool | np.bool_)


def _first(arr: np.ndarray) -> Any:
    return arr.flat[0] if arr.size else None
