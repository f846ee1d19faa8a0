"""``mlhandoff verify``: integrity first, then contract, golden replay and the checklist.

Nothing in the bundle is deserialised until every file's hash matches the manifest; a bundle
that fails integrity gets its remaining checks marked skipped, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle, read_bundle
from mlhandoff.bundle.manifest import Progress
from mlhandoff.checks import CheckResult, VerifyReport
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import BundleError, HandoffError, SpecError
from mlhandoff.spec.checklist import run_checklist
from mlhandoff.spec.loader import load_spec
from mlhandoff.verify.acceptance import acceptance_measured, repro_validated

#: A check of an opened, integrity-verified bundle: the composable unit of ``verify``.
Check = Callable[[Bundle], CheckResult]

_DEPENDENT = (
    ("spec", "Frozen spec is valid"),
    ("golden_contract", "Golden inputs satisfy the data contract"),
    ("golden_replay", "Golden replay reproduces expected outputs"),
    ("acceptance_measured", "Acceptance re-measured on the bundled eval sample"),
    ("repro_validated", "Repro steps validated (mlhandoff repro)"),
)


def golden_contract(bundle: Bundle) -> CheckResult:
    inputs, _ = bundle.golden()
    # The golden rows are a small subset: whole-batch rules were checked on the sample at pack.
    report = CompiledContract(without_batch_rules(bundle.spec.data_contract)).validate(inputs)
    title = "Golden inputs satisfy the data contract"
    if report.ok:
        return CheckResult(
            "golden_contract",
            title,
            "pass",
            f"{report.rows} rows, {len(bundle.spec.data_contract.fields)} fields",
        )
    shown = "; ".join(f"{v.field} {v.rule}: {v.message}" for v in report.violations[:3])
    return CheckResult("golden_contract", title, "fail", shown)


def golden_replay(bundle: Bundle) -> CheckResult:
    title = "Golden replay reproduces expected outputs"
    inputs, expected = bundle.golden()
    try:
        actual = bundle.predict(inputs)
    except HandoffError as exc:
        return CheckResult("golden_replay", title, "fail", f"{type(exc).__name__}: {exc}")
    rtol, atol = bundle.spec.golden.rtol, bundle.spec.golden.atol
    mismatches = [
        m
        for name in expected.column_names
        if (m := _compare(name, expected.column(name), actual, rtol, atol))
    ]
    if mismatches:
        return CheckResult("golden_replay", title, "fail", "; ".join(mismatches))
    return CheckResult(
        "golden_replay",
        title,
        "pass",
        f"{expected.num_rows} rows match within rtol={rtol:g}, atol={atol:g}",
    )


def _compare(
    name: str, expected: pa.ChunkedArray, actual: pa.Table, rtol: float, atol: float
) -> str | None:
    if name not in actual.column_names:
        return f"output '{name}' is no longer produced"
    want, got = (
        expected.to_numpy(zero_copy_only=False),
        actual.column(name).to_numpy(zero_copy_only=False),
    )
    if want.dtype.kind == "f" or got.dtype.kind == "f":
        close = np.isclose(
            got.astype(float), want.astype(float), rtol=rtol, atol=atol, equal_nan=True
        )
    else:
        close = got == want
    bad = np.flatnonzero(~close)
    if not len(bad):
        return None
    row = int(bad[0])
    return f"{name}: {len(bad)} of {len(want)} rows differ (row {row}: expected {want[row]!r}, got {got[row]!r})"


CHECKS: tuple[Check, ...] = (golden_contract, golden_replay, acceptance_measured, repro_validated)


def verify(
    path: str | Path, *, checks: tuple[Check, ...] = CHECKS, progress: Progress | None = None
) -> VerifyReport:
    """Run every check on the bundle at ``path``; never raises for a bad bundle, reports it."""
    root = Path(path)
    try:
        manifest, integrity = read_bundle(root, progress)
    except BundleError as exc:
        report = VerifyReport(bundle=str(root), bundle_digest=None)
        report.results.append(CheckResult("integrity", "Bundle integrity", "fail", str(exc)))
        return report
    report = VerifyReport(bundle=str(root), bundle_digest=manifest.get("bundle_digest"))
    report.results.append(
        CheckResult(
            "integrity",
            "Bundle integrity",
            "pass" if integrity.ok else "fail",
            integrity.describe(),
        )
    )
    if not integrity.ok:
        reason = "integrity failed: nothing in the bundle was loaded"
        report.results += [CheckResult(i, t, "skipped", reason) for i, t in _DEPENDENT]
        return report
    try:
        spec = load_spec(root / layout.SPEC)
    except SpecError as exc:
        report.results.append(CheckResult("spec", "Frozen spec is valid", "fail", str(exc)))
        return report
    report.results.append(
        CheckResult("spec", "Frozen spec is valid", "pass", f"spec_version {spec.spec_version}")
    )
    bundle = Bundle(root=root, manifest=manifest, spec=spec, integrity=integrity)
    for check in checks:
        report.results.append(_run(check, bundle))
    report.results += run_checklist(spec, set(manifest["files"]))
    return report


def _run(check: Check, bundle: Bundle) -> CheckResult:
    try:
        return check(bundle)
    except HandoffError as exc:
        name = getattr(check, "__name__", "check")
        return CheckResult(name, name.replace("_", " "), "fail", f"{type(exc).__name__}: {exc}")
