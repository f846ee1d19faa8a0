"""Reading tabular data from files and dataframes into one form: a pyarrow Table.

Every consumer (inference, validation, golden sets, prediction) works on Arrow so that pandas,
polars, pyarrow, CSV, Parquet and JSON records all go through the same code. Files are read by
:func:`~mlhandoff.contract.reader.open_batches`, the one reader ``validate`` streams too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from mlhandoff.contract.reader import open_batches, records_table, type_columns
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract

TableLike = Any  # pa.Table | pandas.DataFrame | polars.DataFrame | str | Path | list[dict]


def read_table(
    source: TableLike, *, contract: DataContract | None = None, name: str = "data"
) -> pa.Table:
    """Turn ``source`` into a pyarrow Table; unreadable input is an InputError naming it.

    A file is the concatenation of :func:`~mlhandoff.contract.reader.open_batches`' batches:
    with ``contract``, typed as it says (CSV text, JSON's timestamps and dates), so the table is
    what ``validate_file`` checks. In memory, text in the contract's timestamp and date fields and
    columns of nothing but nulls are typed the same way.
    """
    if isinstance(source, str | Path):
        return open_batches(source, contract).table()
    table = _in_memory(source, name)
    return type_columns(table, contract)


def _in_memory(source: TableLike, name: str) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if isinstance(source, list) and all(isinstance(r, dict) for r in source):
        return records_table(source, name)
    module = type(source).__module__.split(".")[0]
    if module == "pandas":
        return _from_pandas(source, name)
    if module == "polars":
        return source.to_arrow()
    raise InputError(
        f"{name}: cannot read a {type(source).__name__}; pass a file path (.parquet, .csv, .json, "
        ".jsonl), a pandas or polars DataFrame, a pyarrow Table, or a list of records"
    )


def _from_pandas(frame: Any, name: str) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{name}: a column mixes types Arrow cannot hold together: {exc}") from exc
