"""Compiled serving: a tree model and its preprocessing as a native predictor, proven equivalent.

::

    compiled = compile_predictor(predictor, options, spec.data_contract.fields)  # or NotCompilable
    save_compiled(compiled, bundle / "model" / "compiled")
    served = load_compiled(bundle / "model" / "compiled", options)
    agreement = compare(predictor, served, golden_inputs, rtol=1e-6, atol=1e-9, name="golden")

Trees are converted and run by treelite (scikit-learn forests and boosting, LightGBM, XGBoost);
the scikit-learn steps in front of them (``preprocess``) become numpy on the contract's columns.
Pack proves the compiled form on the golden set and eval sample (``capabilities/compile.py``)
and keeps it only when the answers agree; ``verify`` proves it again.
"""

from mlhandoff.flavors.compile.base import NotCompilable
from mlhandoff.flavors.compile.equivalence import Agreement, compare
from mlhandoff.flavors.compile.predictor import (
    COMPILED_FLAVORS,
    CompiledPredictor,
    compile_predictor,
    load_compiled,
    save_compiled,
)
from mlhandoff.flavors.compile.trees import treelite_version

__all__ = [
    "COMPILED_FLAVORS",
    "Agreement",
    "CompiledPredictor",
    "NotCompilable",
    "compare",
    "compile_predictor",
    "load_compiled",
    "save_compiled",
    "treelite_version",
]
