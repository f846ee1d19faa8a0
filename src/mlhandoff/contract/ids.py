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
    if len(values) < 2:
        return np.empty(0, dtype=np.int64)
    codes = pc.dictionary_encode(values).indices.fill_null(-1).to_numpy(zero_copy_only=False)
    order = np.lexsort((rows, codes))  # by value, then by row: each value's first row leads
    ranked = codes[order]
    repeat = np.zeros(len(ranked), dtype=bool)
    repeat[1:] = ranked[1:] == ranked[:-1]
    repeat &= ranked >= 0
    return np.sort(np.asarray(rows, dtype=np.int64)[order][repeat])
