"""Tasks and the outputs each task's model returns: vocabulary shared by every stage."""

from __future__ import annotations

from typing import Literal

Task = Literal["binary_classification", "multiclass_classification", "regression", "ranking"]

#: What each task's predictor returns, by name. ``score`` of a binary classifier is the
#: probability of the positive class; ``label`` is the predicted class.
STANDARD_OUTPUTS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("score", "label"),
    "multiclass_classification": ("label", "confidence"),
    "regression": ("prediction",),
    "ranking": ("score",),
}
