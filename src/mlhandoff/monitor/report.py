"""What ``mlhandoff monitor`` found: per window each rule's value against its bound and the state
of its alert; the alerts that fired; what could not be read or judged."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

State = Literal["ok", "pending", "firing", "not judged", "live only"]


@dataclass(frozen=True)
class RuleRow:
    rule: str
    alert: str
    severity: str
    bound: str
    value: float | None
    state: State
    note: str = ""


@dataclass(frozen=True)
class WindowReport:
    start: datetime
    end: datetime
    rows: int
    rules: list[RuleRow]
    #: Contract violations counted in the window: (field, rule) → rows (plain tables only).
    violations: dict[str, int] = field(default_factory=dict)
    #: Performance on the window: labelled rows, realised and estimated metrics.
    performance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Firing:
    alert: str
    severity: str
    rule: str
    since: datetime
    value: float | None


@dataclass(frozen=True)
class Histogram:
    """Reference vs current shares of one field, in the window its rule judged worst."""

    rule: str
    field: str
    window: str
    slots: list[str]
    reference: list[float]
    current: list[float]


@dataclass
class MonitorReport:
    bundle: str
    data: str
    step: str
    reference: str
    layout: str = ""
    files: int = 0
    rows: int = 0
    windows: list[WindowReport] = field(default_factory=list)
    fired: list[Firing] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    histograms: list[Histogram] = field(default_factory=list)
    #: Performance over every reported window together (as per window).
    performance: dict[str, Any] = field(default_factory=dict)
    #: Floating-point outputs read: per output, the values read and how many were NaN or inf.
    output_values: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.fired

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return _iso(data)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value
