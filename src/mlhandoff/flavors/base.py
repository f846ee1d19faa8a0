"""The one interface every model kind is served through.

A flavor knows how to write a model in its library's native format (``save``), how to load that
file back safely (``load``) and how to recognise an in-memory model (``handles``). Loading returns
a :class:`Predictor`: ``predict(table)`` takes a pyarrow Table whose columns are the data
contract's fields and returns the task's *standard outputs* as numpy arrays; the output contract
then picks and names them (see ``mlhandoff.flavors.outputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from mlhandoff.spec.tasks import STANDARD_OUTPUTS, Task

__all__ = ["STANDARD_OUTPUTS", "Flavor", "LoadOptions", "Predictor", "Task"]


@dataclass(frozen=True)
class LoadOptions:
    """What a flavor may need besides the file: all of it comes from the spec."""

    task: Task
    #: Fully-qualified type names the spec's security section accepts (skops / pickle).
    trusted_types: tuple[str, ...] = ()
    #: ``module:function`` for the python-function flavor.
    entrypoint: str | None = None
    #: Directory put on ``sys.path`` for the python-function flavor (the bundled code).
    code_dir: Path | None = None
    #: Decision threshold on ``score`` for binary classifiers.
    threshold: float = 0.5
    #: Input feature names, in the model's order.
    features: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class Predictor(Protocol):
    """A loaded model, ready to predict.

    Predictors may also have ``feature_names`` (the contract fields the model reads, when it
    records them) and, for classifiers, ``classes``: the class labels in the order of the
    ``proba`` output's columns (None: the columns are classes 0..k-1).
    """

    flavor: str

    def predict(self, table: pa.Table) -> dict[str, np.ndarray]: ...


class Flavor(Protocol):
    """A model kind: how to save, recognise and safely load it."""

    name: str
    #: The optional extra that brings its library, or None for a core flavor.
    extra: str | None
    #: The file name the model gets inside the bundle's ``model/`` directory.
    default_filename: str

    def handles(self, model: object) -> bool: ...

    def save(self, model: object, path: Path) -> None: ...

    def load(self, path: Path, options: LoadOptions) -> Predictor: ...

    def packages(self) -> tuple[str, ...]:
        """Distribution names whose exact versions the bundle's environment must pin."""
        ...
