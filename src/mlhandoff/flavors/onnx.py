"""ONNX models run with onnxruntime (CPU).

Two input layouts are understood, the two that converters such as skl2onnx produce:
- one tensor input: the feature columns stacked as ``(n, k)`` in the model's feature order,
  an array field contributing its N values in place (``(n, 64)`` for one 64-value field);
- one input per column, named after the column (mixed types, strings): ``(n, 1)`` for a
  scalar, ``(n, N)`` for an array field.
An input declared with more fixed dimensions (``[None, 8, 8]``) gets the row values reshaped
to them.

Classifiers give a label output and probabilities, either as an ``(n, k)`` tensor or as
ZipMap's list of ``{class: probability}``; the class labels are read from the graph.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.errors import InputError, ModelLoadError, PredictError
from mlhandoff.flavors._deps import require
from mlhandoff.flavors._frame import array_matrix, is_array
from mlhandoff.flavors.base import LoadOptions
from mlhandoff.flavors.outputs import (
    check_classes,
    from_probabilities,
    from_values,
    is_classification,
)

_NAME = "onnx"
_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}
_CLASS_ATTRIBUTES = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")


class OnnxFlavor:
    """An ``onnx.ModelProto`` (e.g. from skl2onnx), run with onnxruntime."""

    name = _NAME
    extra: str | None = "onnx"
    default_filename = "model.onnx"

    def handles(self, model: object) -> bool:
        onnx = sys.modules.get("onnx")  # a ModelProto exists only if onnx is loaded
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(self, model: object, path: Path) -> None:
        onnx = require(_NAME, "onnx", "onnx")
        if not isinstance(model, onnx.ModelProto):
            raise InputError(
                f"the onnx flavor saves an onnx.ModelProto, not a {type(model).__name__}"
            )
        onnx.save_model(model, str(path))

    def load(self, path: Path, options: LoadOptions) -> OnnxPredictor:
        ort = require(_NAME, "onnxruntime", "onnx")
        onnx = require(_NAME, "onnx", "onnx")
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such model file")
        try:
            proto = onnx.load(str(path))
            session = ort.InferenceSession(
                proto.SerializeToString(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(
                f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}); it may be "
                "truncated or not an ONNX file"
            ) from exc
        return OnnxPredictor(session, _graph_classes(proto), options)

    def packages(self) -> tuple[str, ...]:
        return ("onnxruntime", "onnx", "numpy")


def _graph_classes(proto: Any) -> list[Any] | None:
    """Class labels as the graph records them (classifier or ZipMap node), if it does."""
    for node in proto.graph.node:
        for attribute in node.attribute:
            if attribute.name in _CLASS_ATTRIBUTES:
                if attribute.strings:
                    return [s.decode("utf-8") for s in attribute.strings]
                if attribute.ints:
                    return list(attribute.ints)
    return None


class OnnxPredictor:
    """Feeds the table in the layout the graph declares and reads label/probabilities back."""

    flavor = _NAME

    def __init__(self, session: Any, classes: list[Any] | None, options: LoadOptions) -> None:
        self._session = session
        self._options = options
        self._inputs = [(i.name, i.type, list(i.shape)) for i in session.get_inputs()]
        self._outputs = [(o.name, o.type, list(o.shape)) for o in session.get_outputs()]
        unsupported = [f"{n} ({t})" for n, t, _ in self._inputs if t not in _DTYPES]
        if unsupported:
            raise ModelLoadError(f"the ONNX model has inputs of unsupported types: {unsupported}")
        self._per_column = len(self._inputs) > 1 or (
            bool(options.features)
            and self._inputs[0][0] in options.features
            and self._inputs[0][2][-1:] == [1]
        )
        #: Column names the graph declares (per-column inputs), else None.
        self.feature_names: tuple[str, ...] | None = (
            tuple(n for n, _, _ in self._inputs) if self._per_column else None
        )
        #: Class labels of a classifier, in the order of the ``proba`` columns; else None.
        self.classes: np.ndarray | None = None
        if is_classification(options.task):
            if self._probability_output() is None:
                raise ModelLoadError(
                    f"the ONNX model has no probability output, which {options.task} needs; "
                    f"its outputs are {[(n, t) for n, t, _ in self._outputs]}"
                )
            if classes is not None:
                self.classes = check_classes(classes, options.task, self.flavor)

    def _probability_output(self) -> int | None:
        for i, (name, type_, _) in enumerate(self._outputs):
            if type_.startswith("seq(map("):
                return i
            if "prob" in name.lower() and type_ in ("tensor(float)", "tensor(double)"):
                return i
        floats = [
            i
            for i, (_, t, shape) in enumerate(self._outputs)
            if t in ("tensor(float)", "tensor(double)") and len(shape) == 2
        ]
        return floats[-1] if floats else None

    def _feeds(self, table: pa.Table) -> dict[str, np.ndarray]:
        if self._per_column:
            missing = [n for n, _, _ in self._inputs if n not in table.column_names]
            if missing:
                raise InputError(f"the onnx model needs columns the input lacks: {missing[:5]}")
            return {
                name: _shaped(_column(table, name, _DTYPES[type_]), shape)
                for name, type_, shape in self._inputs
            }
        name, type_, shape = self._inputs[0]
        columns = list(self._options.features) or list(table.column_names)
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise InputError(f"the onnx model needs columns the input lacks: {missing[:5]}")
        blocks = [_column(table, c, _DTYPES[type_]) for c in columns]
        widths = [1 if b.ndim == 1 else b.shape[1] for b in blocks]
        row = _row_shape(shape)
        if row is not None and math.prod(row) != sum(widths):
            arrays = [
                f"{c} ({b.shape[1]} values)"
                for c, b in zip(columns, blocks, strict=True)
                if b.ndim == 2
            ]
            given = f"{len(columns)} field(s)" + (f", arrays {', '.join(arrays)}" if arrays else "")
            raise InputError(
                f"the ONNX model's input '{name}' takes {math.prod(row)} values per row, but the "
                f"features give {sum(widths)} ({given}); list under model.features the contract "
                "fields the model reads, in the order of its input (an array field counts as its "
                "length)"
            )
        return {name: _shaped(np.column_stack(blocks), shape)}

    def predict(self, table: pa.Table) -> dict[str, np.ndarray]:
        feeds = self._feeds(table)
        try:
            results = self._session.run(None, feeds)
        except Exception as exc:
            raise PredictError(
                f"the onnx model failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        task = self._options.task
        index = self._probability_output() if is_classification(task) else None
        if index is None:
            return from_values(results[0], task, flavor=self.flavor)
        raw = results[index]
        classes = self.classes
        if isinstance(raw, list):  # ZipMap: one {class: probability} per row
            keys = list(raw[0]) if raw else list(classes if classes is not None else [])
            raw = np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
            raw = raw.reshape(len(results[index]), len(keys))
            classes = np.asarray(keys) if keys else classes
        return from_probabilities(
            raw, task, flavor=self.flavor, classes=classes, threshold=self._options.threshold
        )


def _column(table: pa.Table, name: str, dtype: Any) -> np.ndarray:
    """A scalar column as (n,), an array column as (n, N)."""
    column = table.column(name)
    if is_array(column):
        if dtype is np.object_:
            raise InputError(f"the onnx model takes text for '{name}', which is an array field")
        return array_matrix(column, name, _NAME).astype(dtype, copy=False)
    values = column.to_numpy(zero_copy_only=False)
    if dtype is np.object_:
        return np.asarray([None if v is None else str(v) for v in values], dtype=object)
    return np.asarray(values, dtype=dtype)


def _row_shape(shape: list[Any]) -> tuple[int, ...] | None:
    """An input's shape after the batch dimension, when every part of it is fixed."""
    row = shape[1:]
    return tuple(row) if all(isinstance(d, int) for d in row) else None


def _shaped(values: np.ndarray, shape: list[Any]) -> np.ndarray:
    """(n,) or (n, k) values in the input's declared shape: (n, 1), (n,) or (n, 8, 8)."""
    row = _row_shape(shape)
    if row is not None:
        return values.reshape(len(values), *row)
    if len(shape) == 2 and values.ndim == 1:
        return values.reshape(-1, 1)
    return values
