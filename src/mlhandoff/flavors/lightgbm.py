"""LightGBM models in LightGBM's own text format (``Booster.save_model``).

The text format holds the trees, the objective and -- for pandas categorical features -- the
categories seen at training (``pandas_categorical``). Text columns are turned back into pandas
categoricals with exactly those categories, so the integer codes match the ones trained on.

The booster does not record a classifier's class labels (``LGBMClassifier`` trains on
0..k-1); when they are anything else, ``save`` writes them next to the model in
``<file>.classes.json`` and ``load`` reads them back.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mlhandoff.errors import InputError, ModelLoadError, PredictError
from mlhandoff.flavors._deps import require
from mlhandoff.flavors._frame import feature_order, to_frame
from mlhandoff.flavors.base import LoadOptions
from mlhandoff.flavors.outputs import check_classes, is_classification, standard_outputs

_NAME = "lightgbm"
_BINARY_OBJECTIVES = frozenset({"binary", "cross_entropy", "xentropy"})
_MULTICLASS_OBJECTIVES = frozenset({"multiclass", "softmax", "multiclassova", "multiclass_ova"})
_GENERIC_NAME = re.compile(r"Column_\d+")


def _lgb() -> Any:
    return require(_NAME, "lightgbm", "lightgbm")


def classes_path(path: Path) -> Path:
    """Where the class labels of a classifier saved at ``path`` live, when they are needed."""
    return path.with_name(path.name + ".classes.json")


class LightGBMFlavor:
    """``lightgbm.LGBMModel`` (sklearn API) or a trained ``lightgbm.Booster``."""

    name = _NAME
    extra: str | None = "lightgbm"
    default_filename = "model.txt"

    def handles(self, model: object) -> bool:
        lgb = sys.modules.get("lightgbm")  # the model object exists only if lightgbm is loaded
        return lgb is not None and isinstance(model, lgb.LGBMModel | lgb.Booster)

    def save(self, model: object, path: Path) -> None:
        lgb = _lgb()
        if isinstance(model, lgb.LGBMModel):
            try:
                booster = model.booster_
            except Exception as exc:  # LGBMNotFittedError and friends
                raise InputError(f"the {type(model).__name__} is not fitted: {exc}") from exc
        elif isinstance(model, lgb.Booster):
            booster = model
        else:
            raise InputError(f"the lightgbm flavor cannot save a {type(model).__name__}")
        booster.save_model(str(path))
        classes = getattr(model, "classes_", None)
        if classes is not None and not np.array_equal(classes, np.arange(len(classes))):
            classes_path(path).write_text(json.dumps(np.asarray(classes).tolist()), "utf-8")

    def load(self, path: Path, options: LoadOptions) -> LightGBMPredictor:
        lgb = _lgb()
        text, header = _model_text(path)
        try:
            booster = lgb.Booster(model_str=text)
        except Exception as exc:
            raise ModelLoadError(
                f"{path} is not a readable LightGBM model ({type(exc).__name__}: {exc}); it "
                "may be truncated or not a LightGBM text model"
            ) from exc
        classes = None
        sidecar = classes_path(path)
        if sidecar.is_file():
            try:
                classes = np.asarray(json.loads(sidecar.read_text("utf-8")))
            except ValueError as exc:
                raise ModelLoadError(f"{sidecar} is not valid JSON: {exc}") from exc
        return LightGBMPredictor(booster, header, options, classes)

    def packages(self) -> tuple[str, ...]:
        return ("lightgbm", "numpy", "scipy", "pandas")


def _model_text(path: Path) -> tuple[str, dict[str, str]]:
    """The model text, checked to be whole, without the ``tree_sizes`` index; and its header.

    LightGBM parses trees in parallel at the offsets ``tree_sizes`` gives; in a truncated or
    edited file those offsets point past the text and the process aborts (no exception to
    catch). Without the index it parses sequentially and malformed input raises.
    """
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a readable LightGBM text model: {exc}") from exc
    if not lines or lines[0] != "tree" or "end of trees" not in lines:
        raise ModelLoadError(
            f"{path} is not a whole LightGBM text model (no 'tree' header or 'end of trees' "
            "line); it may be truncated -- save it again with Booster.save_model"
        )
    if "parameters:" in lines and "end of parameters" not in lines:
        # LightGBM reads past a cut-off parameters section and crashes.
        raise ModelLoadError(f"{path} is truncated: its parameters section does not end")
    end = "end of parameters" if "end of parameters" in lines else "end of trees"
    for line in lines[lines.index(end) + 1 :]:
        if line.strip() and not _whole_categories_line(line):
            raise ModelLoadError(f"{path} is truncated or edited after '{end}': {line[:60]!r}")
    trees = sum(line.startswith("Tree=") for line in lines)
    sizes = [line for line in lines if line.startswith("tree_sizes=")]
    if sizes and len(sizes[0].split("=", 1)[1].split()) != trees:
        raise ModelLoadError(f"{path}: the tree index does not match the trees in the file")
    first_tree = next((i for i, line in enumerate(lines) if line.startswith("Tree=")), len(lines))
    header_lines = lines[:first_tree]
    header = dict(line.split("=", 1) for line in header_lines if "=" in line)
    text = "\n".join(line for line in lines if not line.startswith("tree_sizes=")) + "\n"
    return text, header


def _whole_categories_line(line: str) -> bool:
    """The trailer the Python package writes: ``pandas_categorical:<json>``, JSON intact."""
    key = "pandas_categorical:"
    if not line.startswith(key):
        return False
    try:
        json.loads(line[len(key) :])
    except ValueError:
        return False
    return True


class LightGBMPredictor:
    """Predicts with ``Booster.predict`` on a pandas frame (probabilities for classifiers)."""

    flavor = _NAME

    def __init__(
        self,
        booster: Any,
        header: dict[str, str],
        options: LoadOptions,
        classes: np.ndarray | None,
    ) -> None:
        self._booster = booster
        self._options = options
        names = [str(n) for n in booster.feature_name()]
        generic = all(_GENERIC_NAME.fullmatch(n) for n in names)
        #: Feature names recorded at training, or None when it was trained on a bare array.
        self.feature_names: tuple[str, ...] | None = None if generic else tuple(names)
        #: Feature position -> the categories its text values are coded by (pandas categoricals).
        self.categories = _categories(booster, names)
        objective = header.get("objective", "").split(" ")[0]
        #: Class labels of a classifier, in the order of the ``proba`` columns; else None.
        self.classes: np.ndarray | None = None
        task = options.task
        if task == "binary_classification" and objective not in _BINARY_OBJECTIVES:
            raise ModelLoadError(
                f"the LightGBM model's objective is '{objective}', not a binary one, but the "
                "spec's task is binary_classification"
            )
        if task == "multiclass_classification" and objective not in _MULTICLASS_OBJECTIVES:
            raise ModelLoadError(
                f"the LightGBM model's objective is '{objective}', not a multiclass one, but the "
                "spec's task is multiclass_classification"
            )
        if is_classification(task):
            num_class = header.get("num_class", "1")
            k = max(int(num_class), 2) if num_class.isdigit() else 2
            self.classes = check_classes(
                classes if classes is not None else np.arange(k), task, self.flavor
            )

    @property
    def booster(self) -> Any:
        """The ``lightgbm.Booster`` (what ``mlhandoff.flavors.compile`` translates)."""
        return self._booster

    def predict(self, table: pa.Table) -> dict[str, np.ndarray]:
        columns = feature_order(table, self._options.features, self.feature_names)
        frame = to_frame(table, columns, self.flavor)
        for position, categories in self.categories.items():
            column = frame.columns[position] if position < len(frame.columns) else None
            if column is not None and not isinstance(frame[column].dtype, pd.CategoricalDtype):
                frame[column] = pd.Categorical(frame[column], categories=categories)
        try:
            raw = self._booster.predict(frame)
        except Exception as exc:
            raise PredictError(
                f"the lightgbm model failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        return standard_outputs(raw, self._options, self.classes, flavor=self.flavor)


def _categories(booster: Any, names: list[str]) -> dict[int, list[Any]]:
    """Feature position -> the categories pandas had at training, for categorical features."""
    stored = getattr(booster, "pandas_categorical", None)
    indices = booster.params.get("categorical_feature") or []
    if isinstance(indices, str):
        indices = [int(i) for i in indices.split(",") if i.strip()]
    if not stored or len(stored) != len(indices):
        return {}  # categoricals were integer-coded by the user: nothing to re-code
    return {
        int(i): list(cats) for i, cats in zip(indices, stored, strict=True) if int(i) < len(names)
    }
