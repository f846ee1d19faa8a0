"""The errors mlhandoff raises, grouped by what the caller can do about them.

::

    HandoffError                  base; every error carries a stable ``code``
    ├── SpecError                 handoff.yaml is wrong: fix the file (has file:line:col)
    ├── InputError                a file or argument given to a command is wrong or missing
    │   └── EvaluationError       evaluation data or predictions cannot be scored (label, NaN ...)
    ├── StorageError              the disk refused a write (full, read-only): free space, retry
    ├── EngineError               the execution engine cannot run (extra not installed, Dask
    │                             scheduler unreachable): install it, or check the address
    ├── ContractViolation         data does not satisfy the data contract: fix the data
    ├── CompileError              serving.compile is required, but the model has no proven
    │                             compiled form: change the model or set compile: auto
    ├── BundleError               the bundle cannot be used as it is
    │   ├── IntegrityError        a file's hash does not match MANIFEST.json: do not trust it
    │   ├── SignatureError        a signature or sign-off is missing, unreadable or does not match
    │   └── BundleExistsError     pack would overwrite an existing bundle
    ├── ModelLoadError            the model file cannot be deserialised
    │   ├── UnsafeModelError      the artifact reaches for code outside the allowlist
    │   └── MissingExtraError     the flavor needs an optional dependency that is not installed
    └── PredictError              the model failed while predicting
        ├── ModelFailed           (serving) the model raised; carries its type and stack only
        ├── ModelCrashed          (serving) the model process died or was killed; it restarts
        └── ModelExpired          (serving) the time budget ran out before the model was free

Foreign exceptions (yaml, joblib, lightgbm, onnxruntime ...) are translated at the boundary with
``raise OurError(...) from exc`` so callers never branch on third-party types or message text.
"""

from __future__ import annotations

import dataclasses
import errno
from dataclasses import dataclass
from pathlib import Path


class HandoffError(Exception):
    """Base of every error mlhandoff raises on purpose."""

    code = "handoff_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec file, located by field path and (when known) line and column."""

    path: str
    message: str
    file: Path | None = None
    line: int | None = None
    column: int | None = None

    def location(self) -> str:
        where = str(self.file) if self.file else "<spec>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return where

    def __str__(self) -> str:
        field_part = f" {self.path}:" if self.path else ""
        return f"{self.location()}:{field_part} {self.message}"


class SpecError(HandoffError):
    code = "spec_invalid"

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        lines = [str(i) for i in issues]
        head = lines[0] if len(lines) == 1 else f"{len(lines)} problems in the spec:"
        body = "" if len(lines) == 1 else "\n" + "\n".join(f"  {s}" for s in lines)
        super().__init__(head + body)


class InputError(HandoffError):
    code = "input_invalid"


class StorageError(HandoffError):
    """The disk or file system refused a write (full, read-only, no permission)."""

    code = "storage_failed"

    #: OSError numbers that are the machine's state, not a bug: full, too large, read-only ...
    ERRNOS = frozenset(
        {
            errno.ENOSPC,
            errno.EDQUOT,
            errno.EFBIG,
            errno.EROFS,
            errno.EACCES,
            errno.EPERM,
            errno.EMFILE,
            errno.ENFILE,
            errno.EIO,
        }
    )

    @classmethod
    def from_os_error(cls, exc: OSError, what: str = "") -> StorageError | None:
        """Our error for an operational OSError (None for any other: that one is a bug)."""
        if exc.errno not in cls.ERRNOS:
            return None
        where = exc.filename or "a file"
        hint = {
            errno.ENOSPC: "free disk space",
            errno.EDQUOT: "free disk space (quota)",
            errno.EFBIG: "the file size limit (ulimit -f) is too small",
        }.get(exc.errno or 0, "check the path and its permissions")
        tail = f"; {what}" if what else ""
        return cls(f"{where}: {exc.strerror} ({hint}){tail}")


class EngineError(HandoffError):
    """The engine asked for cannot run here: its extra is missing or its cluster unreachable."""

    code = "engine_unavailable"


class EvaluationError(InputError):
    code = "evaluation_invalid"


@dataclass(frozen=True)
class Violation:
    """One broken rule of the data contract, for one field."""

    field: str
    rule: str
    message: str
    count: int = 1
    rows: list[int] = dataclasses.field(default_factory=list)


class ContractViolation(HandoffError):
    code = "contract_violation"

    def __init__(self, violations: list[Violation], what: str = "data") -> None:
        self.violations = violations
        shown = "; ".join(f"{v.field}: {v.message}" for v in violations[:5])
        more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"{what} breaks the data contract: {shown}{more}")


class CompileError(HandoffError):
    code = "compile_refused"


class BundleError(HandoffError):
    code = "bundle_invalid"


class IntegrityError(BundleError):
    code = "bundle_integrity"


class SignatureError(BundleError):
    code = "signature_invalid"


class BundleExistsError(BundleError):
    code = "bundle_exists"


class ModelLoadError(HandoffError):
    code = "model_load_failed"


class UnsafeModelError(ModelLoadError):
    code = "model_unsafe"


class MissingExtraError(ModelLoadError):
    code = "missing_extra"

    def __init__(self, flavor: str, package: str, extra: str) -> None:
        self.flavor, self.package, self.extra = flavor, package, extra
        super().__init__(
            f"the {flavor} flavor needs the '{package}' package, which is not installed; "
            f"install it with: pip install 'mlhandoff[{extra}]'"
        )


class PredictError(HandoffError):
    code = "predict_failed"


class ModelFailed(PredictError):
    """The model raised; carries its type and stack, never its message (it may hold PII)."""

    code = "model_failed"

    def __init__(self, type: str, stack: str) -> None:
        super().__init__(f"the model raised {type}")
        self.type_name = type
        self.stack = stack


class ModelCrashed(PredictError):
    """The model process died or was killed during a call; it is being restarted."""

    code = "model_crashed"


class ModelExpired(PredictError):
    """The time budget ran out before the model was free; the job was not computed."""

    code = "model_expired"
