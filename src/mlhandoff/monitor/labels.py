"""Labels that arrive late (chargebacks weeks after the payment), joined to logged predictions by
a key. The label file is held in memory as one key and one 0/1 label per distinct key.

A key listed twice with the same label counts once; a key listed with different labels is
ambiguous and dropped; keys that match no logged row are counted — each reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.contract.tables import read_table
from mlhandoff.errors import InputError
from mlhandoff.monitor.profile import text_values


class Labels:
    def __init__(self, path: Path, join_key: str, label_column: str, positive: str) -> None:
        table = read_table(path, name="--labels")
        for column, option in ((join_key, "--join-key"), (label_column, "--label-column")):
            if column not in table.column_names:
                raise InputError(
                    f"{path}: no column '{column}' ({option}); columns are: "
                    + ", ".join(table.column_names[:20])
                )
        keys = pc.cast(table.column(join_key), pa.string())
        raw = table.column(label_column)
        known = pc.and_(pc.is_valid(keys), pc.is_valid(raw))
        keys, raw = keys.filter(known), raw.filter(known)
        is_positive = pc.equal(text_values(raw), positive)
        grouped = (
            pa.table({"key": keys, "y": pc.cast(is_positive, pa.int8())})
            .group_by("key")
            .aggregate([("y", "min"), ("y", "max"), ("y", "count")])
        )
        agree = pc.equal(grouped.column("y_min"), grouped.column("y_max"))
        self.path = path
        self.rows = table.num_rows
        self.missing = table.num_rows - len(keys)
        self.duplicates = int(pc.sum(pc.subtract(grouped.column("y_count"), 1)).as_py() or 0)
        self.conflicting = int(len(agree) - (pc.sum(agree).as_py() or 0))
        kept = grouped.filter(agree)
        self.keys = kept.column("key").combine_chunks()
        self.values = kept.column("y_min").to_numpy().astype(np.float64)
        self._matched = np.zeros(len(self.keys), dtype=bool)

    def lookup(self, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """The 0/1 label of each key, NaN where none has arrived."""
        index = pc.index_in(pc.cast(keys, pa.string()), value_set=self.keys)
        found = index.to_numpy(zero_copy_only=False)
        out = np.full(len(found), np.nan)
        if found.dtype.kind == "f":
            hit = ~np.isnan(found)
            positions = found[hit].astype(np.intp)
        else:
            hit = np.ones(len(found), dtype=bool)
            positions = found.astype(np.intp)
        out[hit] = self.values[positions]
        self._matched[positions] = True
        return out

    def summary(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "keys": len(self.keys),
            "joined_rows": 0,  # the monitor fills in the labelled rows it counted
            "duplicate_rows": self.duplicates,
            "conflicting_keys": self.conflicting,
            "unknown_keys": int((~self._matched).sum()),
            "rows_without_key_or_label": self.missing,
        }
