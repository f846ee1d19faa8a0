"""Model flavors: one :class:`Predictor` interface in front of every kind of model.

::

    flavor = flavor_for_model(fitted)          # recognise an in-memory model
    flavor.save(fitted, bundle / "model" / flavor.default_filename)
    predictor = load_predictor(path, flavor.name, LoadOptions(task="binary_classification"))
    outputs = predictor.predict(table)         # {"score": ..., "label": ...}

Optional libraries (lightgbm, xgboost, onnxruntime) are imported only when their flavor saves
or loads, so a missing one is a :class:`MissingExtraError`, not an ImportError at start-up.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from mlhandoff.errors import InputError
from mlhandoff.flavors.base import STANDARD_OUTPUTS, Flavor, LoadOptions, Predictor, Task
from mlhandoff.flavors.lightgbm import LightGBMFlavor
from mlhandoff.flavors.onnx import OnnxFlavor
from mlhandoff.flavors.pyfunc import PythonFunctionFlavor
from mlhandoff.flavors.sklearn import SklearnFlavor
from mlhandoff.flavors.xgboost import XGBoostFlavor

__all__ = [
    "FLAVOR_NAMES",
    "STANDARD_OUTPUTS",
    "Flavor",
    "LoadOptions",
    "Predictor",
    "Task",
    "flavor_for_model",
    "flavor_for_path",
    "get_flavor",
    "load_predictor",
]

# Recognition order matters: LightGBM and XGBoost estimators are sklearn estimators too.
_FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        LightGBMFlavor(),
        XGBoostFlavor(),
        OnnxFlavor(),
        SklearnFlavor(),
        PythonFunctionFlavor(),
    )
}
FLAVOR_NAMES: tuple[str, ...] = ("sklearn", "lightgbm", "xgboost", "onnx", "python_function")

_SUFFIXES: dict[str, str] = {
    ".skops": "sklearn",
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".txt": "lightgbm",
    ".json": "xgboost",
    ".ubj": "xgboost",
    ".onnx": "onnx",
}


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; an unknown name is an InputError with a suggestion."""
    flavor = _FLAVORS.get(name)
    if flavor is None:
        close = difflib.get_close_matches(name, FLAVOR_NAMES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise InputError(
            f"unknown model flavor '{name}'; {hint}known flavors: {', '.join(FLAVOR_NAMES)}"
        )
    return flavor


def flavor_for_model(model: object) -> Flavor:
    """The flavor that can save this in-memory model object."""
    for flavor in _FLAVORS.values():
        if flavor.handles(model):
            return flavor
    raise InputError(
        f"cannot pack a {type(model).__module__}.{type(model).__qualname__}: supported models are "
        "fitted scikit-learn estimators/pipelines, lightgbm LGBMModel/Booster, xgboost "
        "XGBModel/Booster and onnx.ModelProto; for anything else, write a python function "
        "(flavor python_function, model.entrypoint: module:function)"
    )


def flavor_for_path(path: str | Path) -> str:
    """The flavor name a model file (by extension) or code directory implies."""
    p = Path(path)
    if p.is_dir():
        return "python_function"
    name = _SUFFIXES.get(p.suffix.lower())
    if name is None:
        known = ", ".join(f"{s} ({n})" for s, n in _SUFFIXES.items())
        raise InputError(
            f"cannot tell the model flavor of {p.name} from its extension; known: {known}, a "
            "directory (python_function); or set model.flavor in handoff.yaml"
        )
    return name


def load_predictor(path: str | Path, flavor_name: str, options: LoadOptions) -> Predictor:
    """Load the model at ``path`` with the named flavor, ready to predict."""
    return get_flavor(flavor_name).load(Path(path), options)
