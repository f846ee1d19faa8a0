"""What a check says: one line of the handoff checklist (shared by pack, verify and docs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "missing", "warn", "skipped"]

#: Statuses that make ``mlhandoff verify`` exit non-zero.
FAILING: frozenset[str] = frozenset({"fail", "missing"})


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: Status
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass
class VerifyReport:
    bundle: str
    bundle_digest: str | None
    results: list[CheckResult] = field(default_factory=list)
    #: The ML Test Score of the checks above (sections, final, evidence per test), when the
    #: bundle could be opened.
    ml_test_score: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "bundle_digest": self.bundle_digest,
            "ok": self.ok,
            "checks": [asdict(r) for r in self.results],
            "ml_test_score": self.ml_test_score,
        }
