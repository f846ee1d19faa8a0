"""Python functions: ``module:function`` in the bundle's code directory.

The function receives a pandas DataFrame and returns either one array -- the task's first
standard output (a binary classifier's ``score``, from which ``label`` is derived with the
threshold); for classifiers a 2-D array is read as class probabilities -- or a dict of arrays
keyed by standard output names. An array field arrives as it is, one column whose cells are 1-D
numpy arrays (None for a null row): ``np.stack(frame["pixels"])`` is the ``(n, N)`` matrix.

Each load imports the code under a fresh package name, so two bundles whose code both has a
``model.py`` never see each other's module; the code directory is on ``sys.path`` only while
importing (so the entry module may ``import helpers``), and such top-level helper modules are
dropped from ``sys.modules`` afterwards. Imports made lazily inside the function at predict time
therefore cannot reach the code directory: import what you need at module level.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import re
import sys
import types
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.errors import InputError, ModelLoadError, PredictError
from mlhandoff.flavors._frame import to_frame
from mlhandoff.flavors.base import STANDARD_OUTPUTS, LoadOptions
from mlhandoff.flavors.outputs import from_mapping, from_probabilities, is_classification

_NAME = "python_function"
_ENTRYPOINT = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)")


class PythonFunctionFlavor:
    """A plain function, packed from source files rather than saved from an object."""

    name = _NAME
    extra: str | None = None
    default_filename = "code"

    def handles(self, model: object) -> bool:
        return False  # functions are packed from their files, never pickled

    def save(self, model: object, path: Path) -> None:
        raise InputError(
            "a python_function model cannot be saved from an object: set model.path to the "
            "directory with its code and model.entrypoint to 'module:function' in handoff.yaml"
        )

    def load(self, path: Path, options: LoadOptions) -> PythonFunctionPredictor:
        code_dir = Path(options.code_dir) if options.code_dir is not None else path
        if not options.entrypoint:
            raise ModelLoadError("the python_function flavor needs entrypoint: module:function")
        function = import_entrypoint(options.entrypoint, code_dir)
        return PythonFunctionPredictor(function, options)

    def packages(self) -> tuple[str, ...]:
        return ("numpy", "pandas", "pyarrow")


def import_entrypoint(entrypoint: str, code_dir: Path) -> Callable[..., Any]:
    """Import ``module:function`` from ``code_dir`` under a unique package name."""
    match = _ENTRYPOINT.fullmatch(entrypoint.strip())
    if match is None:
        raise ModelLoadError(
            f"entrypoint '{entrypoint}' is not of the form module:function (e.g. model:predict)"
        )
    module_name, function_name = match.groups()
    if not code_dir.is_dir():
        raise ModelLoadError(f"entrypoint '{entrypoint}': code directory {code_dir} not found")
    root = f"_mlhandoff_code_{uuid.uuid4().hex}"
    package = types.ModuleType(root)
    package.__path__ = [str(code_dir)]
    package.__spec__ = importlib.machinery.ModuleSpec(root, None, is_package=True)
    package.__spec__.submodule_search_locations = [str(code_dir)]
    before = set(sys.modules)
    sys.modules[root] = package
    sys.path.insert(0, str(code_dir))
    # No __pycache__ inside the bundle: a written .pyc is an extra file that breaks its integrity.
    write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        module = importlib.import_module(f"{root}.{module_name}")
    except ModuleNotFoundError as exc:
        raise ModelLoadError(
            f"entrypoint '{entrypoint}': module '{module_name}' not found in {code_dir} ({exc})"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(
            f"entrypoint '{entrypoint}': importing '{module_name}' failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.dont_write_bytecode = write_bytecode
        with contextlib.suppress(ValueError):  # unless the code removed it itself
            sys.path.remove(str(code_dir))
        _forget_helpers(before, root, code_dir)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelLoadError(
            f"entrypoint '{entrypoint}': module '{module_name}' has no function '{function_name}'"
        )
    return function


def _forget_helpers(before: set[str], root: str, code_dir: Path) -> None:
    """Drop plain-named modules imported from ``code_dir`` so another bundle cannot get them."""
    base = code_dir.resolve()
    for name in set(sys.modules) - before:
        if name == root or name.startswith(root + "."):
            continue  # unique names: kept, so the code's relative imports keep working
        file = getattr(sys.modules[name], "__file__", None)
        if file and Path(file).resolve().is_relative_to(base):
            del sys.modules[name]


class PythonFunctionPredictor:
    """Calls the function with a DataFrame and maps what it returns to standard outputs."""

    flavor = _NAME
    feature_names: tuple[str, ...] | None = None
    #: A 2-D result's columns are classes 0..k-1.
    classes: np.ndarray | None = None

    def __init__(self, function: Callable[..., Any], options: LoadOptions) -> None:
        self._function = function
        self._options = options

    def predict(self, table: pa.Table) -> dict[str, np.ndarray]:
        columns = list(self._options.features) or list(table.column_names)
        frame = to_frame(table, columns, self.flavor, expand_arrays=False)
        try:
            result = self._function(frame)
        except Exception as exc:
            raise PredictError(
                f"the python_function model failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        task = self._options.task
        threshold = self._options.threshold
        if isinstance(result, Mapping):
            outputs = from_mapping(result, task, flavor=self.flavor, threshold=threshold)
        else:
            array = np.asarray(result)
            if is_classification(task) and array.ndim == 2 and array.shape[1] > 1:
                outputs = from_probabilities(array, task, flavor=self.flavor, threshold=threshold)
            else:
                first = STANDARD_OUTPUTS[task][0]
                outputs = from_mapping(
                    {first: array}, task, flavor=self.flavor, threshold=threshold
                )
        rows = {len(v) for v in outputs.values()}
        if rows != {table.num_rows}:
            raise PredictError(
                f"the python_function model returned {sorted(rows)} rows "
                f"for {table.num_rows} inputs"
            )
        return outputs
