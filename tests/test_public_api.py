"""The public Python API: the names ``import mlhandoff`` offers, and its error tree."""

from __future__ import annotations

import inspect

import mlhandoff
from mlhandoff import errors
from mlhandoff.http_codes import ERROR_CODES, MORE_CODES, all_codes

#: Raised only inside the server (its model runners), never by the public API.
_SERVING_ONLY = {"ModelCrashed", "ModelExpired", "ModelFailed"}


def test_the_public_names_are_pinned() -> None:
    assert set(mlhandoff.__all__) == {
        "Bundle",
        "BundleError",
        "BundleExistsError",
        "CompileError",
        "CheckResult",
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
        "StorageError",
        "SpecIssue",
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
    }
    assert all(hasattr(mlhandoff, name) for name in mlhandoff.__all__)


def test_every_error_is_exported_and_has_its_own_code() -> None:
    tree = {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, errors.HandoffError)
    }
    assert set(tree) - _SERVING_ONLY == {n for n in mlhandoff.__all__ if n in tree}
    codes = [cls.code for cls in tree.values()]
    assert len(codes) == len(set(codes)), sorted(codes)
    assert "AcceptanceFailure" not in tree  # never raised: dropped


def test_the_http_error_codes_are_unique_and_each_more_code_has_a_listed_status() -> None:
    codes = [code for code, _ in ERROR_CODES.values()] + list(MORE_CODES)
    assert len(codes) == len(set(codes)) and sorted(codes) == all_codes()
    for code, status in MORE_CODES.items():  # the documents list it under its status
        assert f"`{code}`" in ERROR_CODES[status][1]
