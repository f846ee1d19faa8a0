"""Fitted scikit-learn preprocessing as vectorised numpy, driven by the fitted parameters.

The steps people put in front of a tree model -- ``ColumnTransformer`` (with passthrough and
drop), ``OrdinalEncoder`` and ``OneHotEncoder`` (with their unknown-value handling),
``SimpleImputer``, ``StandardScaler``, nested ``Pipeline``\\ s of them -- become a tree of
small operations on columns (see ``base``). Each is plain data (``to_json`` / ``from_json``), so
a bundle's compiled form holds no pickle. A step outside that set, or a subclass of one (it may
transform differently), raises :class:`NotCompilable` naming the step; the original serves.

Each operation mirrors what scikit-learn's ``transform`` does with the same parameters, down to
the order of floating-point operations; pack then proves it on the golden set and eval sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.errors import PredictError
from mlhandoff.flavors.compile.base import (
    NUMBER,
    TEXT,
    Column,
    Kind,
    NotCompilable,
    from_plain,
    kind_of,
    plain_float,
    plain_values,
)


class Op(Protocol):
    """One step: columns in, columns out."""

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        """The kinds it gives for ``kinds`` in; NotCompilable when it cannot take them."""
        ...

    def apply(self, columns: list[Column]) -> list[Column]: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Identity:
    """``passthrough`` (and the identity ``FunctionTransformer`` scikit-learn stores for it)."""

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        return kinds

    def apply(self, columns: list[Column]) -> list[Column]:
        return columns

    def to_json(self) -> dict[str, Any]:
        return {"op": "identity"}


@dataclass(frozen=True)
class Chain:
    """A ``Pipeline`` of transformers: each step on the previous one's columns."""

    steps: tuple[Op, ...]

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        for step in self.steps:
            kinds = step.kinds(kinds)
        return kinds

    def apply(self, columns: list[Column]) -> list[Column]:
        for step in self.steps:
            columns = step.apply(columns)
        return columns

    def to_json(self) -> dict[str, Any]:
        return {"op": "chain", "steps": [s.to_json() for s in self.steps]}


@dataclass(frozen=True)
class Select:
    """A ``ColumnTransformer``: each part transforms its columns; outputs side by side."""

    parts: tuple[tuple[tuple[int, ...], Op], ...]
    width: int  # the columns it reads

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        _check_width(len(kinds), self.width)
        return [k for idx, op in self.parts for k in op.kinds([kinds[i] for i in idx])]

    def apply(self, columns: list[Column]) -> list[Column]:
        return [c for idx, op in self.parts for c in op.apply([columns[i] for i in idx])]

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "select",
            "width": self.width,
            "parts": [{"columns": list(idx), "then": op.to_json()} for idx, op in self.parts],
        }


#: Up to this many rows, a text lookup goes through a dict (a request is one or a few rows).
_FEW = 16


class _Lookup:
    """Where each value sits in a list of categories (NaN: not there), and which are missing."""

    def __init__(self, kind: Kind, values: Sequence[Any]) -> None:
        self.kind = kind
        self.values = list(values)
        known = [(i, v) for i, v in enumerate(values) if v is not None]
        #: The position of the missing value among the categories (seen at fit), else None.
        self.missing_at = next((i for i, v in enumerate(values) if v is None), None)
        positions = np.array([i for i, _ in known], dtype=np.float64)
        if kind == TEXT:
            self._set = pa.array([v for _, v in known], pa.string())
            self._where = {v: float(i) for i, v in reversed(known)}  # first position wins
            self._positions = positions
        else:
            numbers = np.array([v for _, v in known], dtype=np.float64)
            order = np.argsort(numbers, kind="stable")
            self._sorted = numbers[order]
            self._positions = positions[order]

    def find(self, column: Column) -> tuple[np.ndarray, np.ndarray]:
        """(position in the categories as float, NaN when absent; is the value missing)."""
        if self.kind == TEXT:
            if not isinstance(column, pa.Array):
                raise PredictError("a text encoder got numbers")
            if len(column) <= _FEW:  # a dict beats a compute kernel's set-up for a request
                values = column.to_pylist()
                codes = [self._where.get(v, math.nan) for v in values]
                return np.array(codes, dtype=np.float64), np.array([v is None for v in values])
            found = pc.index_in(column, value_set=self._set)
            index = found.to_numpy(zero_copy_only=False)  # nulls (absent or missing) -> NaN
            missing = column.is_null().to_numpy(zero_copy_only=False)
            if not len(self._positions):
                return np.full(len(column), np.nan), missing
            where = np.nan_to_num(index, nan=0).astype(np.intp)
            return np.where(np.isnan(index), np.nan, self._positions[where]), missing
        if not isinstance(column, np.ndarray):
            raise PredictError("a numeric encoder got text")
        if not len(self._sorted):
            return np.full(len(column), np.nan), np.isnan(column)
        at = np.minimum(np.searchsorted(self._sorted, column), len(self._sorted) - 1)
        hit = self._sorted[at] == column
        return np.where(hit, self._positions[at], np.nan), np.isnan(column)


def _lookups(categories: list[tuple[Kind, list[Any]]]) -> tuple[_Lookup, ...]:
    return tuple(_Lookup(kind, values) for kind, values in categories)


def _check_kinds(kinds: list[Kind], wanted: Sequence[Kind], what: str) -> None:
    _check_width(len(kinds), len(wanted))
    for i, (got, want) in enumerate(zip(kinds, wanted, strict=True)):
        if got != want:
            raise NotCompilable(f"{what} column {i} is {got}, but it was fitted on {want}")


def _check_width(got: int, want: int) -> None:
    if got != want:
        raise NotCompilable(f"a step reads {want} columns but is given {got}")


@dataclass(frozen=True)
class Ordinal:
    """``OrdinalEncoder``: a category's position; missing and unknown values as fitted."""

    categories: tuple[tuple[Kind, list[Any]], ...]
    #: Code of an unknown value (``use_encoded_value``); None: unknown values are an error.
    unknown_value: float | None
    encoded_missing_value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookups", _lookups(list(self.categories)))

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        _check_kinds(kinds, [k for k, _ in self.categories], "an OrdinalEncoder")
        return [NUMBER] * len(kinds)

    def apply(self, columns: list[Column]) -> list[Column]:
        out = []
        lookups: tuple[_Lookup, ...] = self._lookups  # type: ignore[attr-defined]
        for column, lookup in zip(columns, lookups, strict=True):
            codes, missing = lookup.find(column)
            if lookup.missing_at is not None:  # missing seen at fit: its own code
                codes[missing] = self.encoded_missing_value
                unknown = np.isnan(codes) & ~missing
            else:  # else missing is one more unknown value
                unknown = np.isnan(codes)
            if unknown.any():
                if self.unknown_value is None:
                    raise PredictError(_unknown_message(column, unknown, lookup))
                codes[unknown] = self.unknown_value
            out.append(codes)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "ordinal",
            "categories": [{"kind": k, "values": v} for k, v in self.categories],
            "unknown_value": None
            if self.unknown_value is None
            else plain_float(self.unknown_value),
            "unknown": "error" if self.unknown_value is None else "encode",
            "encoded_missing_value": plain_float(self.encoded_missing_value),
        }


def _unknown_message(column: Column, unknown: np.ndarray, lookup: _Lookup) -> str:
    row = int(np.flatnonzero(unknown)[0])
    value = column[row].as_py() if isinstance(column, pa.Array) else column[row]
    return f"found unknown category {value!r} (row {row}); the encoder knows {lookup.values[:10]}"


@dataclass(frozen=True)
class OneHot:
    """``OneHotEncoder``: one 0/1 column per category (dense), the dropped ones left out."""

    categories: tuple[tuple[Kind, list[Any]], ...]
    #: Position of the dropped category per column, or None.
    drop: tuple[int | None, ...]
    #: Unknown values: all zeros ("ignore") or an error.
    unknown: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookups", _lookups(list(self.categories)))

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        _check_kinds(kinds, [k for k, _ in self.categories], "a OneHotEncoder")
        width = sum(
            len(v) - (d is not None) for (_, v), d in zip(self.categories, self.drop, strict=True)
        )
        return [NUMBER] * width

    def apply(self, columns: list[Column]) -> list[Column]:
        out: list[Column] = []
        lookups: tuple[_Lookup, ...] = self._lookups  # type: ignore[attr-defined]
        for column, lookup, drop in zip(columns, lookups, self.drop, strict=True):
            at, missing = lookup.find(column)
            if lookup.missing_at is not None:
                at[missing] = lookup.missing_at
            unknown = np.isnan(at)
            if unknown.any() and self.unknown == "error":
                raise PredictError(_unknown_message(column, unknown, lookup))
            matrix = np.zeros((len(at), len(lookup.values)))
            rows = np.flatnonzero(~unknown)
            matrix[rows, at[rows].astype(np.intp)] = 1.0
            out.extend(matrix[:, j] for j in range(matrix.shape[1]) if j != drop)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "onehot",
            "categories": [{"kind": k, "values": v} for k, v in self.categories],
            "drop": list(self.drop),
            "unknown": self.unknown,
        }


@dataclass(frozen=True)
class Impute:
    """``SimpleImputer``: a missing value becomes the fitted statistic of its column."""

    values: tuple[tuple[Kind, Any], ...]

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        _check_kinds(kinds, [k for k, _ in self.values], "a SimpleImputer")
        return kinds

    def apply(self, columns: list[Column]) -> list[Column]:
        out: list[Column] = []
        for column, (kind, value) in zip(columns, self.values, strict=True):
            if kind == TEXT:
                out.append(pc.fill_null(column, pa.scalar(value, pa.string())))
            else:
                assert isinstance(column, np.ndarray)
                out.append(np.where(np.isnan(column), value, column))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "impute",
            "values": [
                {"kind": k, "value": v if k == TEXT else plain_float(v)} for k, v in self.values
            ],
        }


@dataclass(frozen=True)
class Scale:
    """``StandardScaler``: ``x -= mean_``, then ``x /= scale_`` (each when fitted with it)."""

    mean: tuple[float, ...] | None
    scale: tuple[float, ...] | None
    width: int

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        _check_kinds(kinds, [NUMBER] * self.width, "a StandardScaler")
        return kinds

    def apply(self, columns: list[Column]) -> list[Column]:
        out: list[Column] = []
        for j, column in enumerate(columns):
            x = np.asarray(column, dtype=np.float64)
            if self.mean is not None:
                x = x - self.mean[j]
            if self.scale is not None:
                x = x / self.scale[j]
            out.append(x)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "scale",
            "width": self.width,
            "mean": None if self.mean is None else [plain_float(v) for v in self.mean],
            "scale": None if self.scale is None else [plain_float(v) for v in self.scale],
        }


@dataclass(frozen=True)
class KnownOnly:
    """A value outside the fitted categories of a column becomes missing (NaN).

    HistGradientBoosting treats a category it did not see at fit (and a negative code) as
    missing; treelite sends it down the other branch, so the compiled form maps it first.
    """

    known: tuple[tuple[int, tuple[float, ...]], ...]
    width: int

    def kinds(self, kinds: list[Kind]) -> list[Kind]:
        _check_kinds(kinds, [NUMBER] * self.width, "a tree model's")
        return kinds

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_lookups", {i: _Lookup(NUMBER, list(values)) for i, values in self.known}
        )

    def apply(self, columns: list[Column]) -> list[Column]:
        out = list(columns)
        lookups: dict[int, _Lookup] = self._lookups  # type: ignore[attr-defined]
        for i, lookup in lookups.items():
            x = np.asarray(out[i], dtype=np.float64)
            at, _ = lookup.find(x)
            out[i] = np.where(np.isnan(at), np.nan, x)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "known_only",
            "width": self.width,
            "known": [{"column": i, "values": list(v)} for i, v in self.known],
        }


def from_json(data: dict[str, Any]) -> Op:
    """The operation ``to_json`` wrote; KeyError / TypeError / ValueError on a malformed one."""
    op = data["op"]
    if op == "identity":
        return Identity()
    if op == "chain":
        return Chain(tuple(from_json(s) for s in data["steps"]))
    if op == "select":
        parts = tuple(
            (tuple(int(i) for i in p["columns"]), from_json(p["then"])) for p in data["parts"]
        )
        return Select(parts, int(data["width"]))
    if op == "ordinal":
        unknown = data["unknown"]
        if unknown not in ("error", "encode"):
            raise ValueError(f"unknown: {unknown!r}")
        return Ordinal(
            _categories_from_json(data["categories"]),
            None if unknown == "error" else from_plain(data["unknown_value"]),
            from_plain(data["encoded_missing_value"]),
        )
    if op == "onehot":
        if data["unknown"] not in ("error", "ignore"):
            raise ValueError(f"unknown: {data['unknown']!r}")
        return OneHot(
            _categories_from_json(data["categories"]),
            tuple(None if d is None else int(d) for d in data["drop"]),
            data["unknown"],
        )
    if op == "impute":
        return Impute(
            tuple(
                (
                    kind_of(v["kind"]),
                    str(v["value"]) if v["kind"] == TEXT else from_plain(v["value"]),
                )
                for v in data["values"]
            )
        )
    if op == "scale":
        mean, scale = data["mean"], data["scale"]
        return Scale(
            None if mean is None else tuple(from_plain(v) for v in mean),
            None if scale is None else tuple(from_plain(v) for v in scale),
            int(data["width"]),
        )
    if op == "known_only":
        return KnownOnly(
            tuple((int(k["column"]), tuple(float(v) for v in k["values"])) for k in data["known"]),
            int(data["width"]),
        )
    raise ValueError(f"unknown operation {op!r}")


def _categories_from_json(items: list[dict[str, Any]]) -> tuple[tuple[Kind, list[Any]], ...]:
    out = []
    for item in items:
        kind = kind_of(item["kind"])
        values = list(item["values"])
        if not all(
            v is None or isinstance(v, str if kind == TEXT else int | float) for v in values
        ):
            raise ValueError(f"{kind} categories hold values of another kind")
        out.append((kind, values))
    return tuple(out)


# ---- from fitted scikit-learn objects -------------------------------------------------------

#: What the compiled form covers, named in refusals.
SUPPORTED = (
    "ColumnTransformer (passthrough, drop), Pipeline, OrdinalEncoder, OneHotEncoder, "
    "SimpleImputer, StandardScaler"
)


def from_sklearn(step: Any, where: str) -> Op:
    """The operation for a fitted transformer; ``where`` names it in a refusal."""
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return Identity()
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )

    kind = type(step)  # exact classes: a subclass may transform differently
    if kind is Pipeline:
        return Chain(tuple(from_sklearn(s, f"{where} > {name}") for name, s in step.steps))
    if kind is ColumnTransformer:
        return _column_transformer(step, where)
    if kind is FunctionTransformer and step.func is None:
        return Identity()
    if kind is OrdinalEncoder:
        return _ordinal(step, where)
    if kind is OneHotEncoder:
        return _one_hot(step, where)
    if kind is SimpleImputer:
        return _imputer(step, where)
    if kind is StandardScaler:
        return _scaler(step, where)
    raise NotCompilable(
        f"step '{where}' ({kind.__name__}) is outside the compiled set ({SUPPORTED})"
    )


def _column_transformer(step: Any, where: str) -> Select:
    indices = getattr(step, "_transformer_to_input_indices", None)
    width = getattr(step, "n_features_in_", None)
    if not isinstance(indices, dict) or width is None:
        raise NotCompilable(f"step '{where}' (ColumnTransformer): its fitted layout is unknown")
    parts = []
    for name, transformer, _ in step.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        columns = tuple(int(i) for i in indices.get(name, ()))
        if columns:  # scikit-learn skips a part that selects nothing
            parts.append((columns, from_sklearn(transformer, f"{where} > {name}")))
    return Select(tuple(parts), int(width))


def _no_infrequent(step: Any, where: str) -> None:
    if getattr(step, "_infrequent_enabled", False):
        raise NotCompilable(
            f"step '{where}' ({type(step).__name__}) groups infrequent categories, which the "
            "compiled form does not"
        )


def _ordinal(step: Any, where: str) -> Ordinal:
    _no_infrequent(step, where)
    unknown = None
    if step.handle_unknown == "use_encoded_value":
        unknown = float(step.unknown_value)
    return Ordinal(_fitted_categories(step, where), unknown, float(step.encoded_missing_value))


def _one_hot(step: Any, where: str) -> OneHot:
    _no_infrequent(step, where)
    drop = getattr(step, "drop_idx_", None)
    categories = _fitted_categories(step, where)
    dropped = (
        tuple(None if d is None else int(d) for d in drop)
        if drop is not None
        else (None,) * len(categories)
    )
    return OneHot(categories, dropped, "error" if step.handle_unknown == "error" else "ignore")


def _fitted_categories(step: Any, where: str) -> tuple[tuple[Kind, list[Any]], ...]:
    try:
        return tuple(plain_values(c) for c in step.categories_)
    except NotCompilable as exc:
        raise NotCompilable(f"step '{where}' ({type(step).__name__}): {exc}") from None


def _imputer(step: Any, where: str) -> Impute:
    name = f"step '{where}' (SimpleImputer)"
    missing = step.missing_values
    if not (missing is None or (isinstance(missing, float) and math.isnan(missing))):
        raise NotCompilable(f"{name} imputes {missing!r}; only NaN / None are compiled")
    if step.add_indicator:
        raise NotCompilable(f"{name} adds missing indicators, which the compiled form does not")
    try:
        kind, values = plain_values(step.statistics_)
    except NotCompilable as exc:
        raise NotCompilable(f"{name}: {exc}") from None
    if any(v is None for v in values):
        raise NotCompilable(f"{name} has features with no statistic (empty at fit)")
    return Impute(tuple((kind, v) for v in values))


def _scaler(step: Any, where: str) -> Scale:
    width = int(step.n_features_in_)
    mean = tuple(float(v) for v in step.mean_) if step.with_mean else None
    scale = tuple(float(v) for v in step.scale_) if step.with_std else None
    if (mean is not None and len(mean) != width) or (scale is not None and len(scale) != width):
        raise NotCompilable(f"step '{where}' (StandardScaler): fitted on another width")
    return Scale(mean, scale, width)
