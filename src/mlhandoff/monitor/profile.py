"""Reference profiles: counts per bin fixed by the reference, so every window is comparable.

A field's profile is a vector of counts over *slots* the reference defines once:

* numeric: ``[missing, below, bin_1 … bin_k, above]``; the bins' edges are quantiles of the
  reference alone (so a window never moves them), ``below``/``above`` hold values outside the
  reference's range. Per-slot sums, the count of finite values and their sum of squares ride
  along (Wasserstein needs where the mass sits; the reference's spread normalises it).
* categorical: ``[missing, category_1 … category_k, unseen]``; the categories are the
  contract's domain, or the reference's 50 most frequent values.
* other (ids, timestamps, dates, arrays): ``[missing, present]``.

Everything is a count or a sum, so profiles **merge exactly**: the profile of two partitions
added is the profile of their union (``a.merge(b)``). A window of the prediction log, a
partition on a Dask worker and a minute of the server's traffic are all counted into the same
slots with :class:`ProfileCounter` and added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.spec.models import DataContract, FieldSpec, OutputContract, OutputField
from mlhandoff.spec.monitoring import FieldKind, field_kind

PROFILE_VERSION = 1
#: Quantile bins per numeric field (fewer when the reference has fewer distinct values).
QUANTILE_BINS = 10
#: Categories kept for a field without a domain; the rest of its values count as unseen.
TOP_CATEGORIES = 50

Role = Literal["input", "output"]
Columns = Mapping[str, pa.Array | pa.ChunkedArray]


@dataclass(frozen=True)
class FieldProfile:
    kind: FieldKind
    counts: np.ndarray
    edges: np.ndarray | None = None
    categories: tuple[str, ...] | None = None
    sums: np.ndarray | None = None
    finite: int = 0
    sumsq: float = 0.0

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @property
    def nulls(self) -> int:
        return int(self.counts[0])

    @property
    def values(self) -> np.ndarray:
        """Counts of the non-null slots: the distribution drift statistics compare."""
        return self.counts[1:]

    @property
    def unseen(self) -> int:
        """Values outside the reference's categories (categorical) or range (numeric)."""
        if self.kind == "categorical":
            return int(self.counts[-1])
        if self.kind == "numeric":  # below and above; with no reference values, one slot
            return int(
                self.counts[1:].sum() if len(self.counts) == 2 else self.counts[1] + self.counts[-1]
            )
        return 0

    def same_slots(self, other: FieldProfile) -> bool:
        return (
            self.kind == other.kind
            and len(self.counts) == len(other.counts)
            and self.categories == other.categories
            and (
                (self.edges is None and other.edges is None)
                or (
                    self.edges is not None
                    and other.edges is not None
                    and np.array_equal(self.edges, other.edges)
                )
            )
        )

    def merge(self, other: FieldProfile) -> FieldProfile:
        if not self.same_slots(other):
            raise ValueError("profiles with different bins do not merge")
        return replace(
            self,
            counts=self.counts + other.counts,
            sums=None if self.sums is None or other.sums is None else self.sums + other.sums,
            finite=self.finite + other.finite,
            sumsq=self.sumsq + other.sumsq,
        )

    def empty(self) -> FieldProfile:
        """The same slots, nothing counted."""
        return replace(
            self,
            counts=np.zeros_like(self.counts),
            sums=None if self.sums is None else np.zeros_like(self.sums),
            finite=0,
            sumsq=0.0,
        )

    def mean_std(self) -> tuple[float, float]:
        """Mean and (population) standard deviation of the finite values counted."""
        if self.sums is None or self.finite == 0:
            return float("nan"), float("nan")
        mean = float(self.sums.sum()) / self.finite
        return mean, float(np.sqrt(max(self.sumsq / self.finite - mean * mean, 0.0)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "counts": self.counts.tolist()}
        if self.edges is not None:
            out["edges"] = self.edges.tolist()
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.sums is not None:
            out |= {"sums": self.sums.tolist(), "finite": self.finite, "sumsq": self.sumsq}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldProfile:
        edges = data.get("edges")
        categories = data.get("categories")
        sums = data.get("sums")
        return cls(
            kind=data["kind"],
            counts=np.asarray(data["counts"], dtype=np.int64),
            edges=None if edges is None else np.asarray(edges, dtype=np.float64),
            categories=None if categories is None else tuple(str(c) for c in categories),
            sums=None if sums is None else np.asarray(sums, dtype=np.float64),
            finite=int(data.get("finite", 0)),
            sumsq=float(data.get("sumsq", 0.0)),
        )


@dataclass(frozen=True)
class Profile:
    """Field profiles of the inputs and outputs, and the rows counted."""

    inputs: dict[str, FieldProfile]
    outputs: dict[str, FieldProfile]
    rows: int = 0
    #: Where a reference came from (eval sample, golden sample), in words.
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def field(self, role: Role, name: str) -> FieldProfile | None:
        return (self.inputs if role == "input" else self.outputs).get(name)

    def merge(self, other: Profile) -> Profile:
        if self.inputs.keys() != other.inputs.keys() or self.outputs.keys() != other.outputs.keys():
            raise ValueError("profiles of different fields do not merge")
        return replace(
            self,
            inputs={n: p.merge(other.inputs[n]) for n, p in self.inputs.items()},
            outputs={n: p.merge(other.outputs[n]) for n, p in self.outputs.items()},
            rows=self.rows + other.rows,
        )

    def empty(self) -> Profile:
        return Profile(
            {n: p.empty() for n, p in self.inputs.items()},
            {n: p.empty() for n, p in self.outputs.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "source": self.source,
            "rows": self.rows,
            **({"meta": self.meta} if self.meta else {}),
            "inputs": {n: p.to_json() for n, p in self.inputs.items()},
            "outputs": {n: p.to_json() for n, p in self.outputs.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        version = data.get("version")
        if version != PROFILE_VERSION:
            raise ValueError(
                f"reference profile version {version!r}: this mlhandoff reads version "
                f"{PROFILE_VERSION}; upgrade mlhandoff"
            )
        return cls(
            inputs={n: FieldProfile.from_json(p) for n, p in data["inputs"].items()},
            outputs={n: FieldProfile.from_json(p) for n, p in data["outputs"].items()},
            rows=int(data["rows"]),
            source=str(data.get("source", "")),
            meta=dict(data.get("meta") or {}),
        )


# --- building a reference ----------------------------------------------------------------------


def build_reference(
    contract: DataContract,
    output_contract: OutputContract,
    inputs: pa.Table,
    outputs: pa.Table,
    *,
    source: str,
    classes: Sequence[Any] | None = None,
) -> Profile:
    """The reference profile of ``inputs`` (every field of the contract) and the model's
    ``outputs``: slots from these rows alone, then these rows counted into them. A classifier's
    label output gets one category per class (``classes``), seen in the reference or not."""
    labels = tuple(category_text(c) for c in classes) if classes else None
    empty = Profile(
        {name: _layout(f, _column(inputs, name)) for name, f in contract.fields.items()},
        {
            name: _layout(
                f, _column(outputs, name), labels if (f.source or name) == "label" else None
            )
            for name, f in output_contract.fields.items()
        },
    )
    counted = ProfileCounter(empty).count(inputs, outputs)[0]
    return replace(counted, source=source)


def category_text(value: Any) -> str:
    """A value as a category is written: ``true``/``false``, ``1``, ``DE``."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray | None:
    return table.column(name) if name in table.column_names else None


def _layout(
    spec: FieldSpec | OutputField,
    column: pa.ChunkedArray | None,
    categories: tuple[str, ...] | None = None,
) -> FieldProfile:
    kind = field_kind(spec)
    if kind == "numeric":
        edges = _quantile_edges(_floats(column) if column is not None else np.empty(0))
        slots = len(edges) + 2
        return FieldProfile(
            kind, np.zeros(slots, np.int64), edges=edges, sums=np.zeros(slots, np.float64)
        )
    if kind == "categorical":
        categories = categories or _categories(spec, column)
        return FieldProfile(kind, np.zeros(len(categories) + 2, np.int64), categories=categories)
    return FieldProfile(kind, np.zeros(2, np.int64))


def _quantile_edges(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.empty(0, np.float64)
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, QUANTILE_BINS + 1)))
    return np.repeat(edges, 2) if edges.size == 1 else edges


def _categories(spec: FieldSpec | OutputField, column: pa.ChunkedArray | None) -> tuple[str, ...]:
    if isinstance(spec, FieldSpec) and spec.domain:
        return tuple(dict.fromkeys(str(v) for v in spec.domain))
    if isinstance(spec, FieldSpec) and spec.type == "bool":
        return ("false", "true")
    if column is None or len(column) == 0:
        return ()
    counts = pc.value_counts(text_values(column).drop_null()).to_pylist()
    ranked = sorted(counts, key=lambda c: (-c["counts"], c["values"]))
    return tuple(c["values"] for c in ranked[:TOP_CATEGORIES])


# --- counting batches into a profile's slots ---------------------------------------------------


class ProfileCounter:
    """Counts batches into a profile's slots, compiled once (the server keeps one).

    ``count(inputs, outputs)`` gives one profile; with ``groups`` (an int per row, below
    ``n_groups``) one profile per group, in one pass: the windows of a batch of log rows.
    A field whose column is absent is not counted: its profile has fewer rows than the
    window, which is how a report tells "missing from the data" from "all null".
    """

    def __init__(self, reference: Profile) -> None:
        self.reference = reference
        self._empty = reference.empty()

    def count(
        self,
        inputs: pa.Table | pa.RecordBatch | Columns | None,
        outputs: pa.Table | pa.RecordBatch | Columns | None = None,
        *,
        groups: np.ndarray | None = None,
        n_groups: int = 1,
    ) -> list[Profile]:
        rows = _rows(inputs) if inputs is not None else _rows(outputs)
        if groups is None:
            groups = np.zeros(rows, np.intp)
        group_rows = np.bincount(groups, minlength=n_groups)[:n_groups]
        counted_in = _count_fields(self._empty.inputs, inputs, groups, n_groups)
        counted_out = _count_fields(self._empty.outputs, outputs, groups, n_groups)
        return [
            Profile(
                {n: per[g] for n, per in counted_in.items()},
                {n: per[g] for n, per in counted_out.items()},
                rows=int(group_rows[g]),
            )
            for g in range(n_groups)
        ]


def _rows(data: Any) -> int:
    if data is None:
        return 0
    if isinstance(data, pa.Table | pa.RecordBatch):
        return data.num_rows
    return len(next(iter(data.values()))) if data else 0


def _get(data: Any, name: str) -> pa.Array | pa.ChunkedArray | None:
    if data is None:
        return None
    if isinstance(data, pa.Table | pa.RecordBatch):
        return data.column(name) if name in data.schema.names else None
    return data.get(name)


def _count_fields(
    empty: dict[str, FieldProfile], data: Any, groups: np.ndarray, n_groups: int
) -> dict[str, list[FieldProfile]]:
    out: dict[str, list[FieldProfile]] = {}
    for name, shape in empty.items():
        column = _get(data, name)
        if column is None:
            out[name] = [shape] * n_groups
        else:
            out[name] = _count_one(shape, column, groups, n_groups)
    return out


def _count_one(
    shape: FieldProfile, column: pa.Array | pa.ChunkedArray, groups: np.ndarray, n_groups: int
) -> list[FieldProfile]:
    size = len(shape.counts)
    values = _floats(column) if shape.kind == "numeric" else None
    slots = slot_indices(shape, column, values)
    flat = slots if n_groups == 1 else groups * size + slots
    counts = np.bincount(flat, minlength=n_groups * size).reshape(n_groups, size)
    if values is None:
        return [replace(shape, counts=counts[g]) for g in range(n_groups)]
    finite = np.isfinite(values)
    everywhere = bool(finite.all())
    weights = values if everywhere else np.where(finite, values, 0.0)
    sums = np.bincount(flat, weights=weights, minlength=n_groups * size).reshape(n_groups, size)
    if n_groups == 1:  # one window in the batch (the common case): no per-group passes
        n_finite = np.array([values.size if everywhere else np.count_nonzero(finite)])
        sumsq = np.array([float(np.square(weights).sum())])  # no BLAS: its threads spin
    else:
        n_finite = np.bincount(groups, weights=finite, minlength=n_groups)
        sumsq = np.bincount(groups, weights=weights * weights, minlength=n_groups)
    return [
        replace(
            shape, counts=counts[g], sums=sums[g], finite=int(n_finite[g]), sumsq=float(sumsq[g])
        )
        for g in range(n_groups)
    ]


def slot_indices(
    shape: FieldProfile, column: pa.Array | pa.ChunkedArray, values: np.ndarray | None = None
) -> np.ndarray:
    """The slot of each row of ``column`` in ``shape``'s layout (0 is missing)."""
    if shape.kind == "numeric":
        assert shape.edges is not None
        x = _floats(column) if values is None else values
        slot = np.searchsorted(_search_edges(shape.edges), x, side="right")
        missing = np.isnan(x)
        if missing.any():
            slot[missing] = 0
        return slot
    if shape.kind == "categorical":
        assert shape.categories is not None
        if isinstance(column, pa.ChunkedArray) and column.num_chunks == 1:
            column = column.chunk(0)
        if isinstance(column, pa.DictionaryArray):  # each distinct value looked up once
            per_value = _category_slots(shape.categories, column.dictionary)
            codes = column.indices.fill_null(0).to_numpy(zero_copy_only=False)
            slot = per_value[codes]
        else:
            slot = _category_slots(shape.categories, column)
        nulls = pc.is_null(column)
        if isinstance(nulls, pa.ChunkedArray):
            nulls = nulls.combine_chunks()
        if nulls.true_count:
            slot[nulls.to_numpy(zero_copy_only=False)] = 0
        return slot
    nulls = pc.is_null(column)
    if isinstance(nulls, pa.ChunkedArray):
        nulls = nulls.combine_chunks()
    return np.where(nulls.to_numpy(zero_copy_only=False), 0, 1).astype(np.intp)


def _category_slots(categories: tuple[str, ...], values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The slot of each value: 1 + its category's index, or the unseen slot."""
    found = pc.index_in(text_values(values), value_set=pa.array(categories, pa.string()))
    slot = found.to_numpy(zero_copy_only=False)
    unseen = len(categories) + 1
    slot = np.where(np.isnan(slot), unseen, slot + 1) if slot.dtype.kind == "f" else slot + 1
    return slot.astype(np.intp)


def _search_edges(edges: np.ndarray) -> np.ndarray:
    """Edges for one ``searchsorted`` that gives the slot itself: a -inf sentinel first (below
    is slot 1), the top edge nudged up so that it closes the last bin (above is the last)."""
    if edges.size == 0:
        return np.array([-np.inf])
    top = np.nextafter(edges[-1], np.inf)
    return np.concatenate([[-np.inf], edges[:-1], [top]])


def _floats(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Values as float64 with NaN for nulls (a zero-copy view for a float column without nulls)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not pa.types.is_floating(column.type) or column.type != pa.float64():
        column = pc.cast(column, pa.float64())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def text_values(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Values as text, the way categories are written: ``true``/``false``, ``1``, ``DE``."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    if pa.types.is_floating(column.type):  # 1.0 is the category "1", as an int column writes it
        integral = pc.equal(pc.floor(column), column)
        if pc.all(pc.or_kleene(integral, pc.is_null(column))).as_py() is not False:
            return pc.cast(pc.cast(column, pa.int64()), pa.string())
    return pc.cast(column, pa.string())
