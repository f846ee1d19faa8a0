"""What an evaluation found: one row per criterion, guardrail and latency budget, with verdicts.

The JSON form (``to_dict``) is what ``pack`` writes to ``reports/acceptance.json`` and what
``evaluate --json`` prints; it holds no timestamps, so packing twice gives the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from mlhandoff.evaluate.verdicts import Verdict

RowKind = Literal["criterion", "guardrail", "latency"]


@dataclass
class SliceResult:
    name: str
    rows: int
    value: float | None
    low: float | None = None
    high: float | None = None
    verdict: Verdict = "inconclusive"
    note: str = ""


@dataclass
class BaselineComparison:
    value: float | None
    low: float | None
    high: float | None
    delta: float | None  # model - baseline
    delta_low: float | None
    delta_high: float | None


@dataclass
class ResultRow:
    kind: RowKind
    metric: str
    bound: str
    verdict: Verdict
    value: float | None
    low: float | None = None
    high: float | None = None
    by: str | None = None
    primary: bool = True
    reason: str = ""
    slice: str | None = None
    baseline: BaselineComparison | None = None
    slices: list[SliceResult] = field(default_factory=list)
    description: str | None = None

    @property
    def label(self) -> str:
        return f"{self.metric} by {self.by}" if self.by else self.metric

    @property
    def gating(self) -> bool:
        """Whether a fail here fails the evaluation (secondary criteria only inform)."""
        return self.kind != "criterion" or self.primary


@dataclass
class AcceptanceReport:
    rows: list[ResultRow]
    data: str
    n: int  # rows evaluated
    units: int  # resampling units: rows, or queries for ranking
    resamples: int
    seed: int
    confidence: float
    baseline: str | None = None
    latency: dict[str, Any] | None = None
    version: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed()

    def failed(self) -> list[ResultRow]:
        return [r for r in self.rows if r.verdict == "fail" and r.gating]

    def inconclusive(self) -> list[ResultRow]:
        return [r for r in self.rows if r.verdict == "inconclusive"]

    def summary(self) -> str:
        counts = {
            v: sum(r.verdict == v for r in self.rows) for v in ("pass", "fail", "inconclusive")
        }
        return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "nothing to evaluate"

    def to_dict(self) -> dict[str, Any]:
        out = clean_json(asdict(self))
        out["ok"] = self.ok
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcceptanceReport:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["rows"] = [_row(r) for r in data.get("rows", [])]
        return cls(**kwargs)


def _row(data: dict[str, Any]) -> ResultRow:
    row = dict(data)
    row["slices"] = [SliceResult(**s) for s in row.get("slices", [])]
    if row.get("baseline") is not None:
        row["baseline"] = BaselineComparison(**row["baseline"])
    return ResultRow(**row)


def clean_json(value: Any) -> Any:
    """NaN and infinities become None: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value
