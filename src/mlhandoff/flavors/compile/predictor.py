"""The compiled predictor: contract columns, the preprocessing as numpy, treelite trees.

:func:`compile_predictor` turns a loaded predictor (scikit-learn pipeline or ensemble, LightGBM
or XGBoost booster) into a :class:`CompiledPredictor` or raises :class:`NotCompilable` saying
why; :func:`save_compiled` writes it as two files (``plan.json``: the inputs, the preprocessing
and how to read the trees, plain JSON; ``trees.bin``: treelite's own serialisation), and
:func:`load_compiled` reads them back. Its outputs go through the same functions as the
original flavor's, so ``score``, ``label`` and ``proba`` mean the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.errors import InputError, ModelLoadError, PredictError
from mlhandoff.flavors._frame import array_matrix, split_element
from mlhandoff.flavors.base import LoadOptions, Predictor
from mlhandoff.flavors.compile import preprocess
from mlhandoff.flavors.compile import trees as _trees
from mlhandoff.flavors.compile.base import (
    NUMBER,
    TEXT,
    Column,
    Kind,
    NotCompilable,
    kind_of,
    plain_values,
)
from mlhandoff.flavors.outputs import standard_outputs
from mlhandoff.flavors.xgboost import xgboost_outputs
from mlhandoff.spec.models import FieldSpec

FORMAT_VERSION = 1
PLAN_FILE = "plan.json"
TREES_FILE = "trees.bin"
#: Flavors whose models may compile.
COMPILED_FLAVORS = ("sklearn", "lightgbm", "xgboost")


@dataclass(frozen=True)
class Input:
    """One column the model reads: a contract field, or element ``element`` of an array field."""

    field: str
    element: int | None
    kind: Kind

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "element": self.element, "kind": self.kind}


class CompiledPredictor:
    """A model compiled by treelite, its preprocessing as numpy; a :class:`Predictor`."""

    compiler = "treelite"

    def __init__(
        self,
        *,
        flavor: str,
        inputs: tuple[Input, ...],
        steps: preprocess.Op,
        trees: _trees.Trees,
        options: LoadOptions,
        classes: np.ndarray | None,
        feature_names: tuple[str, ...] | None,
        objective: str | None = None,
    ) -> None:
        self.flavor = flavor
        self.inputs = inputs
        self.steps = steps
        self.trees = trees
        self._options = options
        self.classes = classes
        self.feature_names = feature_names
        self.objective = objective

    def predict(self, table: pa.Table) -> dict[str, np.ndarray]:
        columns = self.steps.apply(self._read(table))
        matrix = np.column_stack(columns) if columns else np.empty((table.num_rows, 0))
        try:
            raw = self.trees.predict(matrix)
        except Exception as exc:
            raise PredictError(
                f"the compiled {self.flavor} model failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        if self.flavor == "xgboost":
            return xgboost_outputs(raw, self.objective or "", self._options, self.classes)
        return standard_outputs(raw, self._options, self.classes, flavor=self.flavor)

    def _read(self, table: pa.Table) -> list[Column]:
        present = set(table.column_names)
        arrays: dict[str, np.ndarray] = {}
        out: list[Column] = []
        for item in self.inputs:
            if item.field not in present:
                raise InputError(
                    f"the compiled {self.flavor} model needs the column '{item.field}', which "
                    f"the input lacks; the input has: {', '.join(table.column_names[:10])}"
                )
            if item.element is None:
                out.append(_column(table.column(item.field), item.kind))
                continue
            if item.field not in arrays:
                arrays[item.field] = array_matrix(table.column(item.field), item.field, self.flavor)
            matrix = arrays[item.field]
            if item.element >= matrix.shape[1]:
                raise InputError(
                    f"the compiled {self.flavor} model reads {item.field}[{item.element}], which "
                    f"the input's arrays do not hold (they hold {matrix.shape[1]} values)"
                )
            out.append(matrix[:, item.element])
        return out

    def plan(self) -> dict[str, Any]:
        """``plan.json``: everything but the trees, as plain JSON."""
        return {
            "format_version": FORMAT_VERSION,
            "compiler": self.compiler,
            "compiler_version": _trees.treelite_version(),
            "flavor": self.flavor,
            "inputs": [i.to_json() for i in self.inputs],
            "preprocess": self.steps.to_json(),
            "trees": {"file": TREES_FILE, **self.trees.describe()},
            "classes": None if self.classes is None else self.classes.tolist(),
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "objective": self.objective,
        }


def _column(column: pa.ChunkedArray, kind: Kind) -> Column:
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if kind == TEXT:
        if not (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
            arr = pc.cast(arr, pa.string())
        return arr
    if not (
        pa.types.is_integer(arr.type)
        or pa.types.is_floating(arr.type)
        or pa.types.is_boolean(arr.type)
    ):
        raise InputError(f"the compiled model reads numbers, but got {arr.type}")
    if arr.null_count == 0:  # the common case: no cast kernel, one numpy conversion
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    return pc.cast(arr, pa.float64(), safe=False).to_numpy(zero_copy_only=False)  # null -> NaN


# ---- compiling ------------------------------------------------------------------------------


def compile_predictor(
    predictor: Predictor, options: LoadOptions, fields: Mapping[str, FieldSpec]
) -> CompiledPredictor:
    """The compiled form of a loaded predictor; NotCompilable (with the reason) when it has none.

    ``fields`` are the data contract's: they say which columns are numbers and which are text.
    Raises MissingExtraError when treelite is not installed.
    """
    flavor = predictor.flavor
    if flavor not in COMPILED_FLAVORS:
        raise NotCompilable(
            f"{flavor} models are not compiled (compiled: {', '.join(COMPILED_FLAVORS)} tree models)"
        )
    _trees.treelite()  # a missing extra is said before anything else
    classes = getattr(predictor, "classes", None)
    names = getattr(predictor, "feature_names", None)
    common = {
        "flavor": flavor,
        "options": options,
        "classes": None if classes is None else np.asarray(classes),
        "feature_names": None if names is None else tuple(names),
    }
    if flavor == "sklearn":
        return _sklearn(getattr(predictor, "model"), options, fields, common)  # noqa: B009
    if flavor == "lightgbm":
        return _lightgbm(predictor, options, fields, common)
    return _xgboost(predictor, options, fields, common)


def _sklearn(
    model: Any, options: LoadOptions, fields: Mapping[str, FieldSpec], common: dict[str, Any]
) -> CompiledPredictor:
    names = getattr(model, "feature_names_in_", None)
    inputs = _inputs([str(n) for n in names] if names is not None else options.features, fields)
    steps: list[preprocess.Op] = []
    final, final_name = model, type(model).__name__
    if type(model).__name__ == "Pipeline" and type(model).__module__.startswith("sklearn."):
        *head, (final_name, final) = model.steps
        steps = [preprocess.from_sklearn(step, name) for name, step in head]
    compiled, known = _trees.from_sklearn(final, final_name)
    kinds = _numbers_in(
        preprocess.Chain(tuple(steps)), inputs, getattr(final, "n_features_in_", None), final_name
    )
    if known:
        steps.append(preprocess.KnownOnly(tuple(sorted(known.items())), len(kinds)))
    return CompiledPredictor(
        inputs=inputs, steps=preprocess.Chain(tuple(steps)), trees=compiled, **common
    )


def _lightgbm(
    predictor: Any, options: LoadOptions, fields: Mapping[str, FieldSpec], common: dict[str, Any]
) -> CompiledPredictor:
    booster = predictor.booster
    inputs = _inputs(list(predictor.feature_names or options.features), fields)
    categories: dict[int, list[Any]] = predictor.categories
    parts = []
    for i, item in enumerate(inputs):
        if i in categories:  # pandas categoricals: coded by the training categories, else NaN
            kind, values = _categories(categories[i], item)
            op: preprocess.Op = preprocess.Ordinal(((kind, values),), np.nan, np.nan)
        else:
            op = preprocess.Identity()
        parts.append(((i,), op))
    steps = preprocess.Select(tuple(parts), len(inputs))
    _numbers_in(steps, inputs, booster.num_feature(), "LightGBM booster")
    return CompiledPredictor(
        inputs=inputs, steps=steps, trees=_trees.from_lightgbm(booster), **common
    )


def _categories(values: list[Any], item: Input) -> tuple[Kind, list[Any]]:
    kind, plain = plain_values(np.asarray(values, dtype=object))
    if kind != item.kind:
        raise NotCompilable(
            f"LightGBM's categories of '{item.field}' are {kind}, the field {item.kind}"
        )
    return kind, plain


def _xgboost(
    predictor: Any, options: LoadOptions, fields: Mapping[str, FieldSpec], common: dict[str, Any]
) -> CompiledPredictor:
    booster = predictor.booster
    inputs = _inputs(list(predictor.feature_names or options.features), fields)
    compiled = _trees.from_xgboost(booster, predictor.objective)
    steps = preprocess.Identity()
    _numbers_in(steps, inputs, booster.num_features(), "XGBoost booster")
    return CompiledPredictor(
        inputs=inputs, steps=steps, trees=compiled, objective=predictor.objective, **common
    )


def _numbers_in(
    steps: preprocess.Op, inputs: tuple[Input, ...], width: int | None, model: str
) -> list[Kind]:
    """The kinds reaching the trees: numbers, as many as the model was fitted on."""
    kinds = steps.kinds([i.kind for i in inputs])
    if width is not None and len(kinds) != int(width):
        raise NotCompilable(
            f"the {model} reads {width} features, the steps before it give {len(kinds)}"
        )
    if TEXT in kinds:
        raise NotCompilable(f"text reaches the {model} (column {kinds.index(TEXT)}) unencoded")
    return kinds


_KINDS: dict[str, Kind] = {
    "int": NUMBER,
    "float": NUMBER,
    "bool": NUMBER,
    "string": TEXT,
    "category": TEXT,
}


def _inputs(
    names: list[str] | tuple[str, ...], fields: Mapping[str, FieldSpec]
) -> tuple[Input, ...]:
    if not names:
        raise NotCompilable("the model records no feature names and the spec lists no features")
    out: list[Input] = []
    for name in names:
        spec = fields.get(name)
        element = None
        if spec is None and (split := split_element(name)) is not None and split[0] in fields:
            name, element = split
            spec = fields[name]
        if spec is None:
            raise NotCompilable(
                f"the model reads '{name}', which the data contract does not define"
            )
        if spec.type == "array":
            if element is not None:
                out.append(Input(name, element, NUMBER))
            elif spec.length is None:
                raise NotCompilable(f"the array field '{name}' has no length in the data contract")
            else:
                out.extend(Input(name, i, NUMBER) for i in range(spec.length))
        elif spec.type in _KINDS:
            out.append(Input(name, None, _KINDS[spec.type]))
        else:
            raise NotCompilable(
                f"the field '{name}' is a {spec.type}; the compiled form reads numbers and text"
            )
    return tuple(out)


# ---- files ----------------------------------------------------------------------------------


def save_compiled(predictor: CompiledPredictor, directory: Path) -> None:
    """Write ``plan.json`` and ``trees.bin`` into ``directory`` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    predictor.trees.save(directory / TREES_FILE)
    (directory / PLAN_FILE).write_text(json.dumps(predictor.plan(), indent=1) + "\n", "utf-8")


def load_compiled(directory: Path, options: LoadOptions) -> CompiledPredictor:
    """The compiled predictor saved in ``directory``; ModelLoadError when it cannot be read."""
    path = directory / PLAN_FILE
    try:
        plan = json.loads(path.read_text("utf-8"))
        if plan["format_version"] != FORMAT_VERSION:
            raise ValueError(
                f"format_version {plan['format_version']!r}; this mlhandoff reads {FORMAT_VERSION}"
            )
        inputs = tuple(
            Input(
                str(i["field"]),
                None if i["element"] is None else int(i["element"]),
                kind_of(i["kind"]),
            )
            for i in plan["inputs"]
        )
        steps = preprocess.from_json(plan["preprocess"])
        steps.kinds([i.kind for i in inputs])
        meta = plan["trees"]
        flavor = plan["flavor"]
        if flavor not in COMPILED_FLAVORS:
            raise ValueError(f"flavor {flavor!r}")
        classes, names = plan["classes"], plan["feature_names"]
    except (
        OSError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
        NotCompilable,
    ) as exc:
        raise ModelLoadError(f"{path} is not a readable compiled model plan: {exc}") from exc
    return CompiledPredictor(
        flavor=flavor,
        inputs=inputs,
        steps=steps,
        trees=_trees.Trees.load(directory / TREES_FILE, meta),
        options=options,
        classes=None if classes is None else np.asarray(classes),
        feature_names=None if names is None else tuple(names),
        objective=plan.get("objective"),
    )
