"""Validation on Dask: per-partition sessions merged in row order, ids unique over everything.

Each partition (:mod:`~mlhandoff.engines.partitions`) is validated on a worker by the same
:class:`~mlhandoff.contract.validate.ValidationSession` the local engine streams a file
through; the client merges the partial reports in partition order
(``ValidationSession.merge``: integer counts, first K rows by global row number). Ids are
checked over the whole dataset: the (id, global row) pairs are hash-partitioned by id with
Dask's dataframe shuffle, each bucket finds its repeats (:func:`~mlhandoff.contract.ids.repeat_rows`),
and the repeat rows go back to the partitions that hold them (``set_index`` on the row number
with the partitions' first rows as divisions). The leakage sample is drawn per partition from
one seeded stream advanced to the partition's first row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.contract.ids import repeat_rows
from mlhandoff.contract.reader import type_columns
from mlhandoff.contract.stream import LEAKAGE_SAMPLE_ROWS, LeakageSample
from mlhandoff.contract.validate import CompiledContract, ValidationSession
from mlhandoff.engines.partitions import Part


def validate_part(
    part: Part,
    contract: CompiledContract,
    allow_extra: bool,
    extra: list[str],
    chunk_rows: int,
    repeats: dict[str, Any] | None,
    sample: LeakageSample | None,
) -> tuple[ValidationSession, list[pa.RecordBatch]]:
    """One partition's session (rows numbered from 0) and its rows of the leakage sample;
    ``repeats``: per id field, a frame indexed by the global rows that repeat an id."""
    session = contract.session(
        allow_extra=allow_extra, extra_columns=extra, repeats=local_repeats(part, repeats)
    )
    seen = 0
    mine = LeakageSample(None) if sample is not None else None
    for raw in part.batches(chunk_rows):
        batch = type_columns(raw, contract.contract)
        session.add(batch)
        if sample is not None and mine is not None and mine.kept < LEAKAGE_SAMPLE_ROWS:
            mine.keep(sample.draw(batch, part.offset + seen))
        seen += batch.num_rows
    return session, mine.batches if mine is not None else []


def id_pairs(part: Part, name: str, contract: CompiledContract, chunk_rows: int) -> Any:
    """The partition's non-null values of id field ``name`` with their global rows (pandas,
    Arrow-typed: the shuffle hashes the values as they are)."""
    import pandas as pd

    values: list[pa.Array] = []
    for raw in part.batches(chunk_rows, columns=[name]):
        column = type_columns(raw, contract.contract).column(name)
        values.append(column.dictionary_decode() if pa.types.is_dictionary(column.type) else column)
    joined = pa.chunked_array(values).combine_chunks()
    rows = pa.array(np.arange(part.offset, part.offset + len(joined), dtype=np.int64))
    keep = joined.is_valid()
    table = pa.table({"value": joined.filter(keep), "row": rows.filter(keep)})
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def repeat_frame(pairs: Any) -> Any:
    """The rows of a bucket of (value, row) pairs that repeat a value of a smaller row."""
    import pandas as pd

    values = pa.array(pairs["value"])
    rows = repeat_rows(values, pairs["row"].to_numpy(np.int64))
    return pd.DataFrame({"row": rows})


def part_repeats(
    parts: list[Part], contract: CompiledContract, chunk_rows: int
) -> list[dict[str, Any]] | None:
    """For each partition, its delayed repeat rows per id field in the data (None: the
    contract has no ids, so there is nothing to check)."""
    ids = [n for n, f in contract.contract.fields.items() if f.id]
    if not ids:
        return None
    present = [n for n in ids if parts and n in parts[0].schema.names]
    graph = repeat_graph(parts, present, contract, chunk_rows) if present else {}
    return [{n: graph[n][i] for n in present} for i in range(len(parts))]


def local_repeats(part: Part, repeats: dict[str, Any] | None) -> dict[str, np.ndarray] | None:
    """A partition's repeat rows numbered from its first row."""
    if repeats is None:
        return None
    return {
        name: np.sort(frame.index.to_numpy(np.int64)) - part.offset
        for name, frame in repeats.items()
    }


def repeat_graph(
    parts: list[Part], names: list[str], contract: CompiledContract, chunk_rows: int
) -> dict[str, list[Any]]:
    """Per id field, one delayed frame per partition: the rows there that repeat an id."""
    import dask.dataframe as dd
    import pandas as pd

    total = parts[-1].offset + parts[-1].rows
    divisions = [p.offset for p in parts] + [total]
    out: dict[str, list[Any]] = {}
    for name in names:
        t = parts[0].schema.field(name).type
        t = t.value_type if pa.types.is_dictionary(t) else t
        meta = pd.DataFrame(
            {
                "value": pd.Series([], dtype=pd.ArrowDtype(t)),
                "row": pd.Series([], dtype=pd.ArrowDtype(pa.int64())),
            }
        )
        pairs = dd.from_map(
            id_pairs, parts, name=name, contract=contract, chunk_rows=chunk_rows, meta=meta
        )
        buckets = pairs.shuffle(on="value", npartitions=len(parts), shuffle_method="tasks")
        rows = buckets.map_partitions(
            repeat_frame, meta=pd.DataFrame({"row": pd.Series([], dtype="int64")})
        )
        by_part = rows.set_index("row", divisions=divisions, shuffle_method="tasks")
        out[name] = by_part.to_delayed()
    return out
