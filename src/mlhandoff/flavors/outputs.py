"""Turn what a library predicts into the task's standard outputs.

Every flavor ends here, so ``score``, ``label``, ``confidence`` and ``prediction`` mean the same
thing whichever library produced them (see ``STANDARD_OUTPUTS`` in ``base``):

- binary classification: ``score`` (float64) = P(positive class = ``classes[1]``) and
  ``label`` = ``classes[score >= threshold]``;
- multiclass classification: ``label`` = ``classes[argmax]``, ``confidence`` = max probability,
  and ``proba``, every class's probability as ``(n, k)`` in the order of ``classes`` (which the
  predictor exposes as its ``classes`` attribute; evaluation reads it for ``top_k_accuracy@k``);
- labels keep the type of the model's classes: integer classes give integer labels;
- regression: ``prediction`` (float64); ranking: ``score`` (float64).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlhandoff.errors import ModelLoadError, PredictError
from mlhandoff.flavors.base import STANDARD_OUTPUTS, LoadOptions, Task

CLASSIFICATION_TASKS: frozenset[str] = frozenset(
    {"binary_classification", "multiclass_classification"}
)


def is_classification(task: Task) -> bool:
    return task in CLASSIFICATION_TASKS


def check_classes(classes: Sequence[Any] | np.ndarray, task: Task, flavor: str) -> np.ndarray:
    """Check at load time that the model's classes fit the task, so predict cannot surprise."""
    arr = np.asarray(classes)
    if arr.ndim != 1:
        raise ModelLoadError(f"the {flavor} model has multi-output classes; {task} needs one")
    if task == "binary_classification" and len(arr) != 2:
        raise ModelLoadError(
            f"the {flavor} model knows {len(arr)} classes, but the spec's task is "
            "binary_classification (2 classes); set task: multiclass_classification in "
            "handoff.yaml or give a binary model"
        )
    if task == "multiclass_classification" and len(arr) < 2:
        raise ModelLoadError(f"the {flavor} model knows fewer than 2 classes")
    return arr


def from_probabilities(
    proba: Any,
    task: Task,
    *,
    flavor: str,
    classes: Sequence[Any] | np.ndarray | None = None,
    threshold: float = 0.5,
) -> dict[str, np.ndarray]:
    """Class probabilities (n, k) -- or, for binary, P(positive) as (n,) -- to standard outputs."""
    p = np.asarray(proba, dtype=np.float64)
    if task == "binary_classification":
        if p.ndim == 2 and p.shape[1] in (1, 2):
            p = p[:, -1]
        if p.ndim != 1:
            raise PredictError(
                f"the {flavor} model returned probabilities of shape {p.shape}; a binary "
                "classifier must give (n,) or (n, 2)"
            )
        return from_binary_score(p, flavor=flavor, classes=classes, threshold=threshold)
    if task != "multiclass_classification":
        raise PredictError(f"{task} has no class probabilities")
    if p.ndim != 2 or p.shape[1] < 2:
        raise PredictError(
            f"the {flavor} model returned probabilities of shape {p.shape}; a multiclass "
            "classifier must give (n, k) with k >= 2"
        )
    labels = _classes(classes, p.shape[1], flavor)
    best = p.argmax(axis=1)
    return {"label": labels[best], "confidence": p[np.arange(len(p)), best], "proba": p}


def label_type(classes: Sequence[Any] | np.ndarray) -> str:
    """The output-contract type of labels drawn from ``classes``: int, bool or string."""
    kind = np.asarray(classes).dtype.kind
    return {"i": "int", "u": "int", "b": "bool"}.get(kind, "string")


def from_binary_score(
    score: Any,
    *,
    flavor: str,
    classes: Sequence[Any] | np.ndarray | None = None,
    threshold: float = 0.5,
) -> dict[str, np.ndarray]:
    """P(positive class) to ``score`` and the thresholded ``label``."""
    s = _vector(score, "score", flavor)
    labels = _classes(classes, 2, flavor)
    return {"score": s, "label": labels[(s >= threshold).astype(np.intp)]}


def from_values(values: Any, task: Task, *, flavor: str) -> dict[str, np.ndarray]:
    """Numbers per row (regression predictions, ranking scores) to the task's one output."""
    if is_classification(task):
        raise PredictError(f"{task} needs class probabilities, not plain values")
    (name,) = STANDARD_OUTPUTS[task]
    return {name: _vector(values, name, flavor)}


def from_mapping(
    outputs: Mapping[str, Any],
    task: Task,
    *,
    flavor: str,
    threshold: float = 0.5,
) -> dict[str, np.ndarray]:
    """Named arrays (e.g. from a python function) checked against the task's standard outputs.

    A binary classifier may give only ``score``: the label is derived with the threshold.
    """
    wanted = STANDARD_OUTPUTS[task]
    unknown = sorted(set(outputs) - set(wanted))
    if unknown:
        raise PredictError(
            f"the {flavor} model returned outputs {unknown} that {task} does not define; "
            f"expected {list(wanted)}"
        )
    if task == "binary_classification" and "score" in outputs and "label" not in outputs:
        return from_binary_score(outputs["score"], flavor=flavor, threshold=threshold)
    missing = [name for name in wanted if name not in outputs]
    if missing:
        raise PredictError(
            f"the {flavor} model did not return {missing}; {task} needs {list(wanted)}"
        )
    result: dict[str, np.ndarray] = {}
    for name in wanted:
        arr = np.asarray(outputs[name])
        if name in ("score", "confidence", "prediction"):
            arr = _vector(arr, name, flavor)
        elif arr.ndim != 1:
            arr = arr.reshape(-1)
        result[name] = arr
    lengths = {len(v) for v in result.values()}
    if len(lengths) > 1:
        raise PredictError(f"the {flavor} model returned outputs of different lengths")
    return result


def _vector(values: Any, name: str, flavor: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise PredictError(
            f"the {flavor} model returned {name} of shape {arr.shape}; expected one value per row"
        )
    try:
        return arr.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise PredictError(f"the {flavor} model returned non-numeric {name}") from exc


def _classes(classes: Sequence[Any] | np.ndarray | None, k: int, flavor: str) -> np.ndarray:
    if classes is None:
        return np.arange(k)
    arr = np.asarray(classes)
    if len(arr) != k:
        raise PredictError(
            f"the {flavor} model gives {k} class probabilities but knows {len(arr)} classes"
        )
    return arr


def standard_outputs(
    raw: np.ndarray, options: LoadOptions, classes: np.ndarray | None, *, flavor: str
) -> dict[str, np.ndarray]:
    """A library's raw predictions as the task's standard outputs: class probabilities when the
    model has classes, else plain values."""
    if classes is not None:
        return from_probabilities(
            raw, options.task, flavor=flavor, classes=classes, threshold=options.threshold
        )
    return from_values(raw, options.task, flavor=flavor)
