"""A Parquet dataset cut into partitions of whole row groups, each knowing its first global row.

Row numbers in reports are global (row 0 is the dataset's first row, files in name order, as the
local reader streams them); a partition learns where it starts from the Parquet footers alone,
so no data is read to number rows. A partition is a pyarrow fragment (one file, some of its row
groups) plus the dataset's schema: cheap to send to a worker, which reads it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from mlhandoff.contract.reader import parquet_dataset, suffix_kind
from mlhandoff.errors import InputError

#: Rows per partition unless told otherwise: a few row groups, a few hundred MB at most.
PARTITION_ROWS = 2_000_000


@dataclass(frozen=True)
class Part:
    """Rows ``offset`` … ``offset + rows - 1`` of the dataset: row groups of one file."""

    index: int
    fragment: ds.ParquetFileFragment
    schema: pa.Schema
    offset: int
    rows: int

    def batches(
        self, chunk_rows: int, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The partition's rows in batches, typed as the dataset's schema says."""
        names = None if columns is None else [c for c in columns if c in self.schema.names]
        return self.fragment.to_batches(schema=self.schema, columns=names, batch_size=chunk_rows)


def parquet_parts(
    path: str | Path, *, partition_rows: int = PARTITION_ROWS, dictionary: list[str] | None = None
) -> tuple[pa.Schema, list[Part]]:
    """The dataset's schema and its non-empty partitions in row order; InputError for anything
    but Parquet (a file, a directory of files, a hive-partitioned dataset)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_file() and suffix_kind(path) != "parquet":
        raise InputError(
            f"{path}: the dask engine reads Parquet (a file, a directory of files or a "
            "hive-partitioned dataset); convert the file to Parquet or use --engine local"
        )
    try:
        dataset = parquet_dataset(path, dictionary)
        parts: list[Part] = []
        offset = 0
        for fragment in dataset.get_fragments():
            assert isinstance(fragment, ds.ParquetFileFragment)
            groups: list[int] = []
            rows = 0
            for group in fragment.row_groups:
                if groups and rows + group.num_rows > partition_rows:
                    parts.append(_part(len(parts), fragment, groups, dataset.schema, offset, rows))
                    offset, groups, rows = offset + rows, [], 0
                groups.append(group.id)
                rows += group.num_rows
            if rows:
                parts.append(_part(len(parts), fragment, groups, dataset.schema, offset, rows))
                offset += rows
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet dataset ({exc})") from exc
    return dataset.schema, parts


def _part(
    index: int,
    fragment: ds.ParquetFileFragment,
    groups: list[int],
    schema: pa.Schema,
    offset: int,
    rows: int,
) -> Part:
    whole = len(groups) == len(fragment.row_groups)
    piece = fragment if whole else fragment.subset(row_group_ids=groups)
    return Part(index, piece, schema, offset, rows)
