"""From the contract's pyarrow table to the pandas frame a library predicts on.

Array fields (``type: array, length: N``) reach libraries that want one number per column as N
float64 columns named ``name[0]`` .. ``name[N-1]``, in place of the field: a model fitted on a
bare matrix reads them by position, a model fitted on a DataFrame by those names. A null array
is N NaNs, a null element one NaN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.errors import InputError

_ELEMENT = re.compile(r"(.+)\[(\d+)\]")


def to_frame(
    table: pa.Table, columns: Sequence[str], flavor: str, *, expand_arrays: bool = True
) -> pd.DataFrame:
    """``columns`` of ``table``, in that order, as pandas; other columns are dropped.

    With ``expand_arrays``, an array column is replaced by its elements (see the module's
    docstring) and a column named ``name[i]`` is element ``i`` of the array column ``name``;
    without, an array column arrives as-is: one 1-D numpy array (or None) per cell.
    """
    present = set(table.column_names)
    arrays = {c for c in present if is_array(table.column(c))} if expand_arrays else set()
    sources = list(dict.fromkeys(_source(c, present, arrays) for c in columns))
    missing = [c for c in sources if c not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        raise InputError(
            f"the {flavor} model needs columns the input lacks: {shown}; "
            f"the input has: {', '.join(table.column_names[:10])}"
        )
    if not arrays.intersection(sources):
        return _pandas(table, list(columns))
    frames: list[pd.DataFrame] = []
    plain: list[str] = []
    expanded: dict[str, list[str]] = {}
    for source in sources:
        if source not in arrays:
            plain.append(source)
            continue
        if plain:
            frames.append(_pandas(table, plain))
            plain = []
        values = array_matrix(table.column(source), source, flavor)
        expanded[source] = element_names(source, values.shape[1])
        # One float block: 64 Arrow columns would cost a millisecond per request.
        frames.append(pd.DataFrame(values, columns=expanded[source]))
    if plain:
        frames.append(_pandas(table, plain))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)
    wanted = [n for c in columns for n in expanded.get(c, [c])]
    have = set(frame.columns)
    unknown = [n for n in wanted if n not in have]
    if unknown:
        raise InputError(
            f"the {flavor} model reads {', '.join(unknown[:5])}, which the input's arrays do "
            "not hold (elements are numbered from 0)"
        )
    return frame if list(frame.columns) == wanted else frame[wanted]


def _source(column: str, present: set[str], arrays: set[str]) -> str:
    """The input column that ``column`` comes from: itself, or the array it is an element of."""
    match = _ELEMENT.fullmatch(column)
    if column not in present and match and match[1] in arrays:
        return match[1]
    return column


def _pandas(table: pa.Table, columns: list[str]) -> pd.DataFrame:
    # Drop pandas metadata: it may name index columns that select() has removed.
    # One thread: Arrow's pool costs more than it saves below thousands of rows (0.25 -> 0.13 ms
    # for one row), and requests are already concurrent.
    return table.select(columns).replace_schema_metadata(None).to_pandas(use_threads=False)


def is_array(column: pa.ChunkedArray | pa.Array) -> bool:
    t = column.type
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def array_matrix(column: pa.ChunkedArray | pa.Array, name: str, flavor: str) -> np.ndarray:
    """An array column as an ``(n, N)`` float64 matrix: every row must hold N values."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    found = pc.unique(pc.list_value_length(arr).drop_null()).to_pylist()
    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
    elif len(found) == 1:
        width = found[0]
    elif not found:  # no row holds an array: nothing says how long they are
        raise InputError(
            f"the {flavor} model cannot read '{name}': no row holds an array, so its length is "
            "unknown; send the arrays (NaN for missing values)"
        )
    else:
        raise InputError(
            f"the {flavor} model needs every '{name}' array to hold the same number of values; "
            f"found lengths {sorted(found)[:5]}"
        )
    flat = pc.cast(pc.list_flatten(arr), pa.float64()).to_numpy(zero_copy_only=False)
    if arr.null_count == 0:
        return flat.reshape(len(arr), width)
    matrix = np.full((len(arr), width), np.nan)
    matrix[arr.is_valid().to_numpy(zero_copy_only=False)] = flat.reshape(-1, width)
    return matrix


def element_names(name: str, width: int) -> list[str]:
    """The columns an array field becomes: ``name[0]`` .. ``name[width-1]``."""
    return [f"{name}[{i}]" for i in range(width)]


def split_element(name: str) -> tuple[str, int] | None:
    """``("pixels", 3)`` for ``pixels[3]``; None for a name that is not an element."""
    match = _ELEMENT.fullmatch(name)
    return (match[1], int(match[2])) if match else None


def field_names(model_names: Sequence[str], features: Sequence[str]) -> tuple[str, ...]:
    """The contract fields a model's feature names read: ``pixels[3]`` reads the array field
    ``pixels`` when the contract has no field called ``pixels[3]``."""
    known = set(features)
    fields = []
    for name in model_names:
        match = _ELEMENT.fullmatch(name)
        fields.append(match[1] if name not in known and match and match[1] in known else name)
    return tuple(dict.fromkeys(fields))


def is_string_column(series: pd.Series) -> bool:
    """True for text columns, however pandas (object, str, arrow-backed) stores them."""
    return pd.api.types.is_string_dtype(series.dtype) or series.dtype == object


def feature_order(
    table: pa.Table, configured: Sequence[str], model_names: Sequence[str] | None
) -> list[str]:
    """The columns to feed: the model's own names when it records them (they are authoritative,
    and the spec's list may hold contract fields the model ignores), else the spec's, else the
    table's."""
    if model_names:
        return list(model_names)
    if configured:
        return list(configured)
    return list(table.column_names)
