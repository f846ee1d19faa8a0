"""scikit-learn models: saved with skops, loaded only after an audit of the types they need.

``.skops`` files are audited with ``skops.io.get_untrusted_types`` and loaded trusting only the
types the spec lists under ``security.trusted_types``. Pickle and joblib files (``.joblib``,
``.pkl``, ``.pickle``) go through the allowlisting unpickler in ``_safe_pickle``; the stock
``pickle``/``joblib.load`` are never called on a model file.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.errors import InputError, ModelLoadError, PredictError, UnsafeModelError
from mlhandoff.flavors import _safe_pickle, trust
from mlhandoff.flavors._frame import feature_order, field_names, to_frame
from mlhandoff.flavors.base import LoadOptions
from mlhandoff.flavors.outputs import check_classes, is_classification, standard_outputs

SKOPS_SUFFIX = ".skops"
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


class SklearnFlavor:
    """Any fitted scikit-learn estimator or pipeline with ``predict``."""

    name = "sklearn"
    extra: str | None = None
    default_filename = "model.skops"

    def handles(self, model: object) -> bool:
        base = sys.modules.get("sklearn.base")  # a fitted estimator implies sklearn is imported
        return base is not None and isinstance(model, base.BaseEstimator) and _has_predict(model)

    def save(self, model: object, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix == SKOPS_SUFFIX:
            importlib.import_module("skops.io").dump(model, path)
        elif suffix in PICKLE_SUFFIXES:
            # Loadable only through the restricted unpickler; skops is the default for a reason.
            importlib.import_module("joblib").dump(model, path)
        else:
            raise InputError(
                f"cannot save a scikit-learn model as {path.name}: use a {SKOPS_SUFFIX} file "
                f"(or {', '.join(PICKLE_SUFFIXES)})"
            )

    def load(self, path: Path, options: LoadOptions) -> SklearnPredictor:
        suffix = path.suffix.lower()
        if suffix == SKOPS_SUFFIX:
            model = _load_skops(path, options.trusted_types)
        elif suffix in PICKLE_SUFFIXES:
            model = _safe_pickle.load(path, options.trusted_types)
        else:
            raise ModelLoadError(
                f"{path}: a scikit-learn model must be a {SKOPS_SUFFIX} file (or "
                f"{', '.join(PICKLE_SUFFIXES)}), not '{path.suffix}'"
            )
        if not _has_predict(model):
            raise ModelLoadError(
                f"{path} holds a {type(model).__name__}, which has no predict method"
            )
        return SklearnPredictor(model, options)

    def packages(self) -> tuple[str, ...]:
        return ("scikit-learn", "skops", "numpy", "scipy", "joblib")


def untrusted_types(path: Path) -> list[str]:
    """The types a ``.skops`` file needs that skops does not trust by default (for review)."""
    sio = importlib.import_module("skops.io")
    try:
        return list(sio.get_untrusted_types(file=path))
    except Exception as exc:
        raise ModelLoadError(
            f"{path} is not a readable skops file ({type(exc).__name__}: {exc}); it may be "
            "truncated or not a skops file"
        ) from exc


def _load_skops(path: Path, trusted: tuple[str, ...]) -> Any:
    needed = untrusted_types(path)
    _refuse_never_trusted(path, [t for t in needed if trust.never_trusted(t)])
    missing = [t for t in needed if t not in trusted]
    if missing:
        listed = "\n".join(f"    - {t}" for t in missing)
        raise UnsafeModelError(
            f"{path} needs {len(missing)} type(s) that are not trusted: {', '.join(missing)}. "
            "Review them, then list the ones you accept under security.trusted_types in "
            f"handoff.yaml:\n  security:\n    trusted_types:\n{listed}"
        )
    # Every name is trusted now, so importing it is what skops would do next anyway.
    aliases = [
        f"{t} (that is {trust.real_name(obj)})"
        for t in needed
        if trust.never_trusted_object(obj := _skops_target(t))
    ]
    _refuse_never_trusted(path, aliases)
    sio = importlib.import_module("skops.io")
    try:
        return sio.load(path, trusted=needed)
    except Exception as exc:
        raise ModelLoadError(
            f"{path} could not be loaded by skops ({type(exc).__name__}: {exc})"
        ) from exc


def _refuse_never_trusted(path: Path, names: list[str]) -> None:
    if names:
        raise UnsafeModelError(
            f"{path} needs {', '.join(names)}, refused: {trust.WHY}. A model file that needs "
            "it cannot be loaded safely; save the model again without it"
        )


def _skops_target(name: str) -> object:
    """What skops resolves ``module.name`` to (``getattr(import_module(module), name)``)."""
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except Exception:  # not importable: skops fails on it too, and nothing ran
        return None


def _has_predict(model: object) -> bool:
    return callable(getattr(model, "predict", None))


class SklearnPredictor:
    """Predicts through ``predict_proba`` (classifiers) or ``predict`` (everything else)."""

    flavor = "sklearn"

    def __init__(self, model: Any, options: LoadOptions) -> None:
        self._model = model
        self._options = options
        names = getattr(model, "feature_names_in_", None)
        #: Column names recorded at fit time (``pixels[3]`` for an array's element), or None
        #: when it was fitted on a bare array.
        self._columns = tuple(str(n) for n in names) if names is not None else None
        #: The contract fields those columns read.
        self.feature_names: tuple[str, ...] | None = (
            field_names(self._columns, options.features) if self._columns is not None else None
        )
        #: Class labels of a classifier, in the order of the ``proba`` columns; else None.
        self.classes: np.ndarray | None = None
        if is_classification(options.task):
            if not hasattr(model, "predict_proba"):
                raise ModelLoadError(
                    f"the {type(model).__name__} model has no predict_proba, which "
                    f"{options.task} needs for score/confidence; wrap it in "
                    "sklearn.calibration.CalibratedClassifierCV"
                )
            classes = getattr(model, "classes_", None)
            if classes is None:
                raise ModelLoadError(f"the {type(model).__name__} model records no classes_")
            self.classes = check_classes(classes, options.task, self.flavor)

    @property
    def model(self) -> Any:
        """The fitted estimator or pipeline (what ``mlhandoff.flavors.compile`` translates)."""
        return self._model

    def predict(self, table: pa.Table) -> dict[str, np.ndarray]:
        columns = feature_order(table, self._options.features, self._columns)
        frame = to_frame(table, columns, self.flavor)  # array fields: one column per element
        # Same kind of input as at fit time, so sklearn has no feature-name warning to give.
        x: Any = frame if self._columns is not None else frame.to_numpy()
        try:
            raw = (
                self._model.predict_proba(x) if self.classes is not None else self._model.predict(x)
            )
        except Exception as exc:
            raise PredictError(
                f"the sklearn model failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        return standard_outputs(raw, self._options, self.classes, flavor=self.flavor)
