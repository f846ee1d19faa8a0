"""From the contract's pyarrow table to the pandas frame a library predicts on."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from mlhandoff.errors import InputError


def to_frame(table: pa.Table, columns: Sequence[str], flavor: str) -> pd.DataFrame:
    """``columns`` of ``table``, in that order, as pandas; other columns are dropped."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        raise InputError(
            f"the {flavor} model needs columns the input lacks: {shown}; "
            f"the input has: {', '.join(table.column_names[:10])}"
        )
    # Drop pandas metadata: it may name index columns that select() has removed.
    # One thread: Arrow's pool costs more than it saves below thousands of rows (0.25 -> 0.13 ms
    # for one row), and requests are already concurrent.
    return table.select(list(columns)).replace_schema_metadata(None).to_pandas(use_threads=False)


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
