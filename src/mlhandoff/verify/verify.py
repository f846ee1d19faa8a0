"""``mlhandoff verify``: integrity first, then every registered check and the checklist.

Nothing in the bundle is deserialised until every file's hash matches the manifest; a bundle
that fails integrity gets its remaining checks marked skipped, with the reason. The checks come
from the capability registry (see ``mlhandoff.capability``), in registration order; a check
whose dependencies did not pass is skipped and says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mlhandoff.capabilities  # noqa: F401  (registers the built-in capabilities)
from mlhandoff.bundle.bundle import Bundle, open_bundle, read_bundle
from mlhandoff.bundle.manifest import Progress
from mlhandoff.bundle.signing import TrustAnchors
from mlhandoff.capabilities.ml_test_score import ml_test_score, score_line
from mlhandoff.capability import Check, HandoffView, checklist, registered
from mlhandoff.checks import CheckResult, VerifyReport
from mlhandoff.errors import BundleError, HandoffError

_SPEC = ("spec", "Frozen spec and pack record are valid")
#: Statuses that let a dependent check run.
_PASSED = frozenset({"pass", "warn"})


def verify(
    path: str | Path,
    *,
    progress: Progress | None = None,
    public_keys: Sequence[str | Path] = (),
    keyring: str | Path | None = None,
) -> VerifyReport:
    """Run every check on the bundle at ``path``; never raises for a bad bundle, reports it.

    ``public_keys`` check its signature, ``keyring`` (a directory of ``.pub`` files) its
    sign-offs; an unreadable key file is bad input (InputError), not a bad bundle.
    """
    root = Path(path)
    anchors = TrustAnchors.load(public_keys, keyring)
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
    checks = [check for cap in registered() for check in cap.checks]
    if not integrity.ok:
        reason = "integrity failed: nothing in the bundle was loaded"
        report.results += [CheckResult(*_SPEC, "skipped", reason)]
        report.results += [CheckResult(c.id, c.title, "skipped", reason) for c in checks]
        return report
    try:
        bundle = open_bundle(
            root, checked=(manifest, integrity), anchors=anchors
        )  # containment checks too
    except HandoffError as exc:
        report.results.append(CheckResult(*_SPEC, "fail", str(exc)))
        return report
    report.results.append(
        CheckResult(
            *_SPEC,
            "pass",
            f"spec_version {bundle.spec.spec_version}, format {bundle.manifest['format_version']}",
        )
    )
    done: dict[str, CheckResult] = {}
    for check in checks:
        done[check.id] = _run(check, bundle, done)
        report.results.append(done[check.id])
    report.results += checklist(HandoffView.of_bundle(bundle))
    report.ml_test_score = ml_test_score(bundle, report.results)
    report.results.append(score_line(report.ml_test_score))
    return report


def _run(check: Check, bundle: Bundle, done: dict[str, CheckResult]) -> CheckResult:
    blocked = [d for d in check.depends_on if d not in done or done[d].status not in _PASSED]
    if blocked:
        return CheckResult(check.id, check.title, "skipped", f"needs {', '.join(blocked)} to pass")
    try:
        status, detail = check.run(bundle)
    except HandoffError as exc:
        status, detail = "fail", f"{type(exc).__name__}: {exc}"
    return CheckResult(check.id, check.title, status, detail)
