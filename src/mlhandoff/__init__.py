"""mlhandoff: turn an ML prototype into a verified, reproducible production handoff.

From a notebook::

    import mlhandoff
    result = mlhandoff.pack(fitted_model, sample=df, spec="handoff.yaml", out="dist")
    report = mlhandoff.verify(result.path)
"""

from mlhandoff._version import __version__
from mlhandoff.bundle import Bundle, open_bundle
from mlhandoff.checks import CheckResult, VerifyReport
from mlhandoff.contract import CompiledContract, ValidationReport, read_table
from mlhandoff.errors import (
    BundleError,
    BundleExistsError,
    CompileError,
    ContractViolation,
    EvaluationError,
    HandoffError,
    InputError,
    IntegrityError,
    MissingExtraError,
    ModelLoadError,
    PredictError,
    SignatureError,
    SpecError,
    SpecIssue,
    StorageError,
    UnsafeModelError,
    Violation,
)
from mlhandoff.pack import PackResult, pack
from mlhandoff.spec import HandoffSpec, load_spec, parse_spec
from mlhandoff.verify import verify

__all__ = [
    "Bundle",
    "BundleError",
    "BundleExistsError",
    "CheckResult",
    "CompileError",
    "CompiledContract",
    "ContractViolation",
    "EvaluationError",
    "HandoffError",
    "HandoffSpec",
    "InputError",
    "IntegrityError",
    "MissingExtraError",
    "ModelLoadError",
    "PackResult",
    "PredictError",
    "SignatureError",
    "SpecError",
    "SpecIssue",
    "StorageError",
    "UnsafeModelError",
    "ValidationReport",
    "VerifyReport",
    "Violation",
    "__version__",
    "load_spec",
    "open_bundle",
    "pack",
    "parse_spec",
    "read_table",
    "verify",
]
