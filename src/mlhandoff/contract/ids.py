"""Global id uniqueness: ``id: true`` judged over a whole file or dataset, not chunk by chunk.

A row breaks the ``unique`` rule when its id occurs in a row with a smaller number (the first
occurrence passes), whichever chunk or partition either row is in. :func:`repeat_rows` finds
those rows among (value, global row) pairs: the local engine hands it all of a file's ids at once
(the id columns only, held in memory), the Dask engine hash-partitions the pairs by value, so a
bucket holds every occurrence of its values, and calls it once per bucket. The rows found go
back to the validator with each chunk (``CompiledContract.session(repeats=...)``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["REPEAT_WHAT", "repeat_rows"]

#: The unique rule's message when ids are checked over the whole data.
REPEAT_WHAT = "repeats an id seen in an earlier row of the data"


def repeat_rows(values: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """The sorted rows (``rows[i]`` numbers ``values[i]``) whose non-null value also occurs in
    a row with a smaller number."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    rows = np.asarray(rows, dtype=np.int64)
    if len(values) < 2:
        return np.empty(0, dtype=np.int64)
    if np.any(rows[1:] < rows[:-1]):  # a shuffled bucket: put it in row order first
        order = np.argsort(rows, kind="stable")
        values, rows = values.take(pa.array(order)), rows[order]
    # A stable sort by value keeps equal values in row order: in each run of equal values the
    # first is the first occurrence, the others repeat it (nulls sort last and never repeat).
    # Sorting, rather than hashing, keeps memory near the column's size for millions of ids.
    ranked = pc.sort_indices(values)  # nulls last
    sorted_values = values.take(ranked)
    same = pc.equal(sorted_values.slice(1), sorted_values.slice(0, len(values) - 1))
    repeat = np.zeros(len(values), dtype=bool)
    repeat[1:] = same.fill_null(False).to_numpy(zero_copy_only=False)
    return np.sort(rows[ranked.to_numpy()[repeat]])
