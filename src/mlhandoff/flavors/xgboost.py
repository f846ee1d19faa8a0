"""XGBoost models in XGBoost's own JSON or UBJSON format (``save_model`` / ``load_model``).

Text columns become pandas categoricals and go into a ``DMatrix`` with
``enable_categorical=True``; XGBoost >= 3.1 stores the training categories in the model and
re-codes by value, so the order of categories at predict time does not matter.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mlhandoff.errors import InputError, ModelLoadError, PredictError
from mlhandoff.flavors._deps import require
from mlhandoff.flavors._frame import feature_order, is_string_column, to_frame
from mlhandoff.flavors.base import LoadOptions
from mlhandoff.flavors.outputs import (
    check_classes,
    from_probabilities,
    from_values,
    is_classification,
)

_NAME = "xgboost"
SUFFIXES = (".json", ".ubj")
#: Objectives whose ``predict`` is already a probability.
_PROBABILITY_OBJECTIVES = frozenset({"binary:logistic", "multi:softprob"})
#: Objectives whose probabilities are recovered from the margin.
MARGIN_OBJECTIVES = frozenset({"binary:logitraw", "multi:softmax"})


def _xgb() -> Any:
    return require(_NAME, "xgboost", "xgboost")


class XGBoostFlavor:
    """``xgboost.XGBModel`` (sklearn API) or a trained ``xgboost.Booster``."""

    name = _NAME
    extra: str | None = "xgboost"
    default_filename = "model.json"

    def handles(self, model: object) -> bool:
        xgb = sys.modules.get("xgboost")  # the model object exists only if xgboost is loaded
        return xgb is not None and isinstance(model, xgb.XGBModel | xgb.Booster)

    def save(self, model: object, path: Path) -> None:
        xgb = _xgb()
        if path.suffix.lower() not in SUFFIXES:
            raise InputError(
                f"cannot save an XGBoost model as {path.name}: use {' or '.join(SUFFIXES)}"
            )
        if not isinstance(model, xgb.XGBModel | xgb.Booster):
            raise InputError(f"the xgboost flavor cannot save a {type(model).__name__}")
        try:
            model.save_model(str(path))
        except Exception as exc:
            raise InputError(f"could not save the XGBoost model: {exc}") from exc

    def load(self, path: Path, options: LoadOptions) -> XGBoostPredictor:
        xgb = _xgb()
        if path.suffix.lower() not in SUFFIXES:
            raise ModelLoadError(f"{path}: an XGBoost model must be a {' or '.join(SUFFIXES)} file")
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such model file")
        if path.suffix.lower() == ".ubj":
            _check_ubjson(path)
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
            config = json.loads(booster.save_config())
        except Exception as exc:
            raise ModelLoadError(
                f"{path} is not a readable XGBoost model ({type(exc).__name__}: {exc}); it "
                "may be truncated or not an XGBoost JSON/UBJSON model"
            ) from exc
        return XGBoostPredictor(booster, config, options)

    def packages(self) -> tuple[str, ...]:
        return (_distribution(), "numpy", "scipy", "pandas")


def _distribution() -> str:
    """xgboost ships as ``xgboost`` or ``xgboost-cpu``: pin the one that is installed."""
    for name in ("xgboost", "xgboost-cpu"):
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return "xgboost"


class XGBoostPredictor:
    """Predicts with ``Booster.predict`` on a ``DMatrix`` built from a pandas frame."""

    flavor = _NAME

    def __init__(self, booster: Any, config: dict[str, Any], options: LoadOptions) -> None:
        self._booster = booster
        self._options = options
        names = booster.feature_names
        #: Feature names recorded at training, or None when it was trained on a bare array.
        self.feature_names: tuple[str, ...] | None = tuple(names) if names else None
        learner = config.get("learner", {})
        #: The training objective (``binary:logistic`` ...): it says what ``predict`` returns.
        self.objective = str(learner.get("objective", {}).get("name", ""))
        task = options.task
        #: Class labels of a classifier, in the order of the ``proba`` columns; else None.
        self.classes: np.ndarray | None = None
        if is_classification(task):
            kind = "binary" if task == "binary_classification" else "multi"
            known = _PROBABILITY_OBJECTIVES | MARGIN_OBJECTIVES
            if not self.objective.startswith(kind + ":") or self.objective not in known:
                raise ModelLoadError(
                    f"the XGBoost model's objective is '{self.objective}', which gives no "
                    f"class probabilities for {task}; train with "
                    f"{'binary:logistic' if kind == 'binary' else 'multi:softprob'}"
                )
            k = int(learner.get("learner_model_param", {}).get("num_class", "0") or 0)
            self.classes = check_classes(np.arange(max(k, 2)), task, self.flavor)

    @property
    def booster(self) -> Any:
        """The ``xgboost.Booster`` (what ``mlhandoff.flavors.compile`` translates)."""
        return self._booster

    def predict(self, table: pa.Table) -> dict[str, np.ndarray]:
        xgb = _xgb()
        columns = feature_order(table, self._options.features, self.feature_names)
        frame = to_frame(table, columns, self.flavor)
        for column in frame.columns:
            if is_string_column(frame[column]):
                frame[column] = pd.Categorical(frame[column])
        margin = self.objective in MARGIN_OBJECTIVES
        try:
            data = (
                xgb.DMatrix(frame, enable_categorical=True)
                if self.feature_names
                else xgb.DMatrix(frame.to_numpy(dtype=np.float64))
            )
            raw = self._booster.predict(data, output_margin=margin)
        except Exception as exc:
            raise PredictError(
                f"the xgboost model failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        return xgboost_outputs(raw, self.objective, self._options, self.classes)


def xgboost_outputs(
    raw: np.ndarray, objective: str, options: LoadOptions, classes: np.ndarray | None
) -> dict[str, np.ndarray]:
    """What ``Booster.predict`` returned (margins for a margin objective) as standard outputs."""
    if classes is None:
        return from_values(raw, options.task, flavor=_NAME)
    if objective in MARGIN_OBJECTIVES:
        raw = _softmax(raw) if raw.ndim == 2 else 1.0 / (1.0 + np.exp(-raw))
    return from_probabilities(
        raw, options.task, flavor=_NAME, classes=classes, threshold=options.threshold
    )


def _softmax(margin: np.ndarray) -> np.ndarray:
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return result


_UBJ_FIXED = {b"Z": 0, b"N": 0, b"T": 0, b"F": 0, b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8}
_UBJ_FIXED |= {b"d": 4, b"D": 8, b"C": 1}
_UBJ_INTS = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8}
_UBJ_MAX_DEPTH = 64


def _check_ubjson(path: Path) -> None:
    """Walk the UBJSON document and check every length and count fits in the file.

    XGBoost's UBJSON reader trusts them: a truncated file makes it read past the buffer and
    crash the process, or allocate without bound. This pass is cheap (typed arrays are skipped,
    not decoded) and turns such files into a ModelLoadError.
    """
    try:
        reader = _UBJReader(path.read_bytes())
        reader.value(None, 0)
        if reader.pos != len(reader.data):
            raise ValueError(f"{len(reader.data) - reader.pos} bytes after the document")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{path} is not a whole UBJSON model ({exc}); it may be truncated -- save it again "
            "with save_model"
        ) from exc


class _UBJReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def peek(self) -> bytes:
        return self.data[self.pos : self.pos + 1]

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"ends early at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def length(self) -> int:
        marker = self.take(1)
        if marker not in _UBJ_INTS:
            raise ValueError(f"expected a length at byte {self.pos - 1}, found {marker!r}")
        return int.from_bytes(self.take(_UBJ_INTS[marker]), "big", signed=marker != b"U")

    def value(self, marker: bytes | None, depth: int) -> None:
        if depth > _UBJ_MAX_DEPTH:
            raise ValueError("nested too deep")
        marker = marker or self.take(1)
        if marker in _UBJ_FIXED:
            self.take(_UBJ_FIXED[marker])
        elif marker in (b"S", b"H"):
            self.take(self.length())
        elif marker in (b"[", b"{"):
            self.container(marker == b"{", depth)
        else:
            raise ValueError(f"unknown marker {marker!r} at byte {self.pos - 1}")

    def container(self, is_object: bool, depth: int) -> None:
        typed = None
        if self.peek() == b"$":
            self.take(1)
            typed = self.take(1)
            if self.peek() != b"#":
                raise ValueError("a typed container without a count")
        if self.peek() == b"#":
            self.take(1)
            count = self.length()
            if typed in _UBJ_FIXED and not is_object:
                self.take(count * _UBJ_FIXED[typed])  # typed numbers: skip them all at once
                return
            for _ in range(count):  # every element takes at least one byte: bounded by the file
                if is_object:
                    self.take(self.length())
                self.value(typed, depth + 1)
            return
        end = b"}" if is_object else b"]"
        while self.peek() != end:
            if is_object:
                self.take(self.length())
            self.value(None, depth + 1)
        self.take(1)
