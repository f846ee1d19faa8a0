"""Tree ensembles as treelite models, predicted with ``treelite.gtil``; what each library returns.

treelite converts scikit-learn's forests and boosting (``treelite.sklearn.import_model``),
LightGBM and XGBoost boosters (``treelite.frontend``); no tree is evaluated by our own code.
What is ours is making the numbers come out as the original library's do:

- the input is cast as the library casts it (scikit-learn's decision trees and XGBoost compare
  float32 values; HistGradientBoosting and LightGBM float64);
- a softmax is computed here in float64 (treelite's differs from scikit-learn's and LightGBM's
  by ~1e-8);
- XGBoost adds its float32 tree outputs one after another onto a float32 base margin, then
  applies its float32 link; summed in another order the margins differ by ~1e-5, so the compiled
  form sums treelite's per-tree outputs in XGBoost's order.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlhandoff.errors import ModelLoadError
from mlhandoff.flavors._deps import require
from mlhandoff.flavors.compile.base import NotCompilable

#: How the trees' output becomes what the original library returns.
Output = Literal["gtil", "softmax", "xgboost"]
#: Rows from which gtil may use every core (below, one thread answers sooner).
_PARALLEL_ROWS = 20_000
#: XGBoost objectives whose margins the compiled form reproduces, with their float32 link.
_XGB_LINKS = {
    "binary:logistic": "sigmoid",
    "reg:logistic": "sigmoid",
    "binary:logitraw": "identity",
    "multi:softprob": "softmax",
    "multi:softmax": "identity",
    "reg:squarederror": "identity",
    "reg:absoluteerror": "identity",
    "reg:pseudohubererror": "identity",
    "reg:quantileerror": "identity",
    "rank:pairwise": "identity",
    "rank:ndcg": "identity",
    "rank:map": "identity",
}


def treelite() -> Any:
    """The treelite package, or MissingExtraError with the pip command."""
    return require("compiled", "treelite", "compile")


def treelite_version() -> str:
    return str(treelite().__version__)


@dataclass
class Trees:
    """A treelite model and how to feed it and read it."""

    model: Any
    #: The dtype the original library compares feature values in.
    dtype: Literal["float32", "float64"]
    output: Output
    #: XGBoost only: its objective and float32 base margin(s), one per class.
    objective: str | None = None
    base_margin: tuple[float, ...] = ()

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """What the original library's predict returns (probabilities or values), (n,) or (n, k)."""
        gtil = treelite().gtil
        x = np.ascontiguousarray(matrix, dtype=np.dtype(self.dtype))
        threads = -1 if len(x) >= _PARALLEL_ROWS else 1
        if self.output == "xgboost":
            return self._xgboost(gtil.predict_per_tree(self.model, x, nthread=threads))
        margin = self.output == "softmax"
        raw = gtil.predict(self.model, x, nthread=threads, pred_margin=margin)
        raw = raw.reshape(len(x), -1)  # (n, targets=1, classes) -> (n, classes)
        if margin:
            raw = _softmax(raw)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def _xgboost(self, per_tree: np.ndarray) -> np.ndarray:
        per_tree = per_tree.reshape(per_tree.shape[0], per_tree.shape[1])
        classes = len(self.base_margin)
        owner = self._owner
        margins = np.empty((per_tree.shape[0], classes), dtype=np.float32)
        for c in range(classes):
            start = np.full((per_tree.shape[0], 1), self.base_margin[c], dtype=np.float32)
            columns = np.concatenate([start, per_tree[:, owner == c]], axis=1)
            margins[:, c] = np.cumsum(columns, axis=1, dtype=np.float32)[:, -1]  # in tree order
        link = _XGB_LINKS[self.objective or ""]
        if link == "sigmoid":
            margins = np.float32(1) / (_exp32(-margins) + np.float32(1))
        elif link == "softmax":
            shifted = margins - margins.max(axis=1, keepdims=True)
            e = _exp32(shifted)
            total = e[:, 0].copy()
            for c in range(1, classes):
                total += e[:, c]
            margins = e / total[:, None]
        return margins[:, 0] if classes == 1 else margins

    @functools.cached_property
    def _owner(self) -> np.ndarray:
        """The class each tree adds to."""
        return np.asarray(self.model.get_header_accessor().get_field("class_id")).reshape(-1)

    def save(self, path: Path) -> None:
        self.model.serialize(str(path))

    def describe(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "output": self.output,
            "objective": self.objective,
            "base_margin": list(self.base_margin),
        }

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> Trees:
        tl = treelite()
        try:
            model = tl.Model.deserialize(str(path))
        except Exception as exc:  # treelite.TreeliteError and friends
            raise ModelLoadError(
                f"{path} is not a readable treelite model ({type(exc).__name__}: {exc})"
            ) from exc
        dtype, output = meta["dtype"], meta["output"]
        if dtype not in ("float32", "float64") or output not in ("gtil", "softmax", "xgboost"):
            raise ModelLoadError(f"{path}: unknown tree settings {dtype!r}, {output!r}")
        objective = meta.get("objective")
        if output == "xgboost" and objective not in _XGB_LINKS:
            raise ModelLoadError(f"{path}: XGBoost objective {objective!r} is not compiled")
        return cls(model, dtype, output, objective, tuple(float(v) for v in meta["base_margin"]))


def _exp32(x: np.ndarray) -> np.ndarray:
    """``expf`` as XGBoost computes it: exp in double, rounded once to float32."""
    return np.exp(x.astype(np.float64)).astype(np.float32)


def _softmax(margin: np.ndarray) -> np.ndarray:
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def _output(model: Any) -> Output:
    return (
        "softmax" if model.get_header_accessor().get_field("postprocessor") == "softmax" else "gtil"
    )


def _convert(convert: Any, what: str) -> Any:
    try:
        return convert()
    except Exception as exc:  # NotImplementedError, TreeliteError, AssertionError ...
        raise NotCompilable(
            f"treelite could not convert the {what}: {type(exc).__name__}: {exc}"
        ) from exc


# ---- per library ----------------------------------------------------------------------------

_SKLEARN_TREES = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
)
_SKLEARN_HIST = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
SKLEARN_MODELS = _SKLEARN_TREES + _SKLEARN_HIST


def from_sklearn(estimator: Any, where: str) -> tuple[Trees, dict[int, tuple[float, ...]]]:
    """treelite trees for a fitted scikit-learn ensemble, and its categorical columns' known
    categories (HistGradientBoosting: values outside them are missing to scikit-learn)."""
    name = type(estimator).__name__
    module = type(estimator).__module__
    if not module.startswith("sklearn.ensemble") or name not in SKLEARN_MODELS:
        raise NotCompilable(
            f"step '{where}' ({name}) is not a tree ensemble treelite converts "
            f"({', '.join(SKLEARN_MODELS)}, XGBoost, LightGBM)"
        )
    tl = treelite()
    model = _convert(lambda: tl.sklearn.import_model(estimator), name)
    if name in _SKLEARN_HIST:
        return Trees(model, "float64", _output(model)), _hist_categories(estimator, where)
    return Trees(model, "float32", _output(model)), {}


def _hist_categories(estimator: Any, where: str) -> dict[int, tuple[float, ...]]:
    mask = getattr(estimator, "is_categorical_", None)
    if mask is None or not np.any(mask):
        return {}
    preprocessor = getattr(estimator, "_preprocessor", None)
    try:
        encoder = preprocessor.transformers_[0][1]  # type: ignore[union-attr]
        categories = [np.asarray(c, dtype=np.float64) for c in encoder.categories_]
    except (AttributeError, IndexError, TypeError, ValueError):
        raise NotCompilable(
            f"step '{where}': this scikit-learn's HistGradientBoosting keeps its categories "
            "where the compiler does not look"
        ) from None
    columns = np.flatnonzero(mask)
    if len(columns) != len(categories):
        raise NotCompilable(f"step '{where}': categorical columns and categories do not match")
    return {
        int(i): tuple(float(v) for v in cats if not math.isnan(v))
        for i, cats in zip(columns, categories, strict=True)
    }


def from_lightgbm(booster: Any) -> Trees:
    tl = treelite()
    model = _convert(lambda: tl.frontend.from_lightgbm(booster), "LightGBM booster")
    return Trees(model, "float64", _output(model))


def from_xgboost(booster: Any, objective: str) -> Trees:
    if objective not in _XGB_LINKS:
        raise NotCompilable(f"XGBoost objective '{objective}' is not compiled")
    types = booster.feature_types or []
    if "c" in types:
        raise NotCompilable("XGBoost categorical features are not compiled")
    tl = treelite()
    model = _convert(lambda: tl.frontend.from_xgboost(booster), "XGBoost booster")
    header = model.get_header_accessor()
    base = np.asarray(header.get_field("base_scores"), dtype=np.float64).reshape(-1)
    classes = int(np.asarray(header.get_field("num_class")).reshape(-1)[0])
    if _XGB_LINKS[objective] == "sigmoid":
        base32 = [float(_logit32(_base_score(booster)))]
    else:
        base32 = [float(np.float32(b)) for b in base]
    if len(base32) != max(classes, 1):
        raise NotCompilable(f"XGBoost model with {classes} classes and {len(base32)} base scores")
    return Trees(model, "float32", "xgboost", objective, tuple(base32))


def _base_score(booster: Any) -> np.float32:
    import json

    param = json.loads(booster.save_config())["learner"]["learner_model_param"]
    return np.float32(str(param["base_score"]).strip("[]").split(",")[0])


def _logit32(p: np.float32) -> np.float32:
    """XGBoost's ``ProbToMargin`` for logistic objectives: ``-logf(1.0f / p - 1.0f)``."""
    inner = np.float32(1) / p - np.float32(1)
    return np.float32(-np.log(np.float64(inner)).astype(np.float32))
