"""What validation found, merged across chunks: counts, global row numbers and masked values.

A chunk's rule checks produce :class:`Hit` masks; :class:`ReportBuilder` turns them into counts,
the first K row numbers and their values, so a 50M-row file and a 1-row request give the same
report. Values of PII fields never leave this module unmasked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.errors import ContractViolation, Violation
from mlhandoff.spec.models import LeakageFinding

REDACTED = "<redacted>"


class Rule(StrEnum):
    """Every rule a violation can name: a public, stable list (422 bodies, the violations
    metric's ``rule`` label, ``validate --json``). Reports list a field's violations in this
    order; the members compare and serialise as their plain names."""

    MISSING_COLUMN = "missing_column"
    UNEXPECTED_COLUMN = "unexpected_column"
    TYPE = "type"
    NOT_NULL = "not_null"
    FINITE = "finite"
    LENGTH = "length"
    MIN = "min"
    MAX = "max"
    DOMAIN = "domain"
    UNSEEN = "unseen"
    PATTERN = "pattern"
    MIN_LENGTH = "min_length"
    MAX_LENGTH = "max_length"
    TIMEZONE = "timezone"
    UNIQUE = "unique"
    MAX_NULL_FRACTION = "max_null_fraction"


#: Every rule name, as plain strings.
RULES: tuple[str, ...] = tuple(rule.value for rule in Rule)
_RULE_RANK = {rule: i for i, rule in enumerate(RULES)}
#: Row examples written into a violation's one-line message (all K are in ``rows``/``values``).
SHOWN_IN_MESSAGE = 3


@dataclass(frozen=True)
class FieldViolation(Violation):
    """A Violation with the values of its first rows (``<redacted>`` for PII fields)."""

    values: list[Any] = dataclasses.field(default_factory=list)


@dataclass
class ValidationReport:
    """Every broken rule, with counts and the first offending rows.

    ``notices`` do not fail validation: unseen categories a policy allows or buckets, and absent
    nullable columns. ``failing_rows`` counts rows that break at least one row-level rule.
    ``leakage`` holds leakage findings when a label was given (warnings, never failures).
    """

    rows: int
    violations: list[Violation] = dataclasses.field(default_factory=list)
    notices: list[Violation] = dataclasses.field(default_factory=list)
    failing_rows: int = 0
    leakage: list[LeakageFinding] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_for_violations(self, what: str = "data") -> None:
        if self.violations:
            raise ContractViolation(self.violations, what=what)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "failing_rows": self.failing_rows,
            "violations": [_violation_dict(v) for v in self.violations],
            "notices": [_violation_dict(v) for v in self.notices],
            "leakage": [f.model_dump(mode="json") for f in self.leakage],
        }


def _violation_dict(v: Violation) -> dict[str, Any]:
    return {
        "field": v.field,
        "rule": v.rule,
        "message": v.message,
        "count": v.count,
        "rows": v.rows,
        "values": getattr(v, "values", []),
    }


@dataclass
class Hit:
    """One rule broken in one chunk: ``rows`` (sorted positions) and the column holding them."""

    field: str
    rule: Rule
    what: str
    rows: np.ndarray
    values: pa.Array
    notice: bool = False
    #: The offending values themselves, when the rule already has them (saves a take()).
    shown: np.ndarray | None = None


@dataclass
class _Tally:
    field: str
    rule: Rule
    what: str
    notice: bool
    count: int = 0
    rows: list[int] = dataclasses.field(default_factory=list)
    values: list[Any] = dataclasses.field(default_factory=list)


class ReportBuilder:
    """Accumulates hits chunk by chunk; :meth:`finish` applies the whole-data rules."""

    def __init__(self, max_examples: int, pii: set[str]) -> None:
        self.max_examples = max_examples
        self.pii = pii
        self.rows = 0
        self.failing_rows = 0
        self.nulls: dict[str, int] = {}
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._schema: dict[str, Violation] = {}
        self._schema_notices: dict[str, Violation] = {}

    def schema(self, violation: Violation, notice: bool = False) -> None:
        """A schema-level finding (missing or unexpected columns): kept once, not per chunk."""
        (self._schema_notices if notice else self._schema).setdefault(violation.rule, violation)

    def add(self, hits: list[Hit], rows: int, nulls: dict[str, int]) -> None:
        """Fold one chunk of ``rows`` rows (starting at row ``self.rows``) into the report."""
        offset = self.rows
        failing: list[np.ndarray] = []
        for hit in hits:
            count = len(hit.rows)
            tally = self._tallies.get((hit.field, hit.rule))
            if tally is None:
                tally = _Tally(hit.field, hit.rule, hit.what, hit.notice)
                self._tallies[(hit.field, hit.rule)] = tally
            tally.count += count
            room = self.max_examples - len(tally.rows)
            if room > 0:
                local = hit.rows[:room]
                tally.rows += (local + offset).tolist()
                tally.values += self._shown(hit, local, room)
            if not hit.notice:
                failing.append(hit.rows)
        if len(failing) == 1:
            self.failing_rows += len(failing[0])
        elif failing:
            mask = np.zeros(rows, dtype=bool)
            for positions in failing:
                mask[positions] = True
            self.failing_rows += int(np.count_nonzero(mask))
        for name, count in nulls.items():
            self.nulls[name] = self.nulls.get(name, 0) + count
        self.rows += rows

    def merge(self, other: ReportBuilder) -> None:
        """Fold ``other`` (a builder of the rows after ours) in: the same counts, first rows and
        values as one builder fed both sets of chunks in order (integer sums, first K rows of
        the concatenation), so partitions validated apart merge exactly."""
        offset = self.rows
        for key, theirs in other._tallies.items():
            tally = self._tallies.get(key)
            if tally is None:
                tally = _Tally(theirs.field, theirs.rule, theirs.what, theirs.notice)
                self._tallies[key] = tally
            tally.count += theirs.count
            room = self.max_examples - len(tally.rows)
            if room > 0:
                tally.rows += [r + offset for r in theirs.rows[:room]]
                tally.values += theirs.values[:room]
        for rule, violation in other._schema.items():
            self._schema.setdefault(rule, violation)
        for rule, violation in other._schema_notices.items():
            self._schema_notices.setdefault(rule, violation)
        for name, count in other.nulls.items():
            self.nulls[name] = self.nulls.get(name, 0) + count
        self.failing_rows += other.failing_rows
        self.rows += other.rows

    def broken(self) -> bool:
        """Whether a rule other than the whole-data ones (null fractions) is broken so far."""
        return bool(self._schema) or any(not t.notice for t in self._tallies.values())

    def _shown(self, hit: Hit, rows: np.ndarray, room: int) -> list[Any]:
        if hit.field in self.pii:
            return [REDACTED] * len(rows)
        if hit.shown is not None:
            plain = hit.shown[:room].tolist()
            if hit.shown.dtype.kind != "f":
                return list(plain)
            return [v if math.isfinite(v) else str(v) for v in plain]
        taken = hit.values.take(pa.array(rows))
        try:
            plain = taken.to_pylist()
        except (OverflowError, ValueError):  # a time Python cannot hold (year 0): Arrow's text
            return taken.cast(pa.string()).to_pylist()
        t = taken.type
        if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_boolean(t):
            return plain
        if pa.types.is_floating(t):
            return [v if v is None or math.isfinite(v) else str(v) for v in plain]
        return [_json_value(v) for v in plain]

    def finish(
        self, order: dict[str, int], null_limits: dict[str, float]
    ) -> tuple[list[Violation], list[Violation], int]:
        """Violations and notices (sorted by field, then rule) and the failing-row count."""
        violations: list[Violation] = list(self._schema.values())
        notices: list[Violation] = list(self._schema_notices.values())
        for tally in sorted(
            self._tallies.values(), key=lambda t: (order.get(t.field, -1), _RULE_RANK[t.rule])
        ):
            (notices if tally.notice else violations).append(self._violation(tally))
        for name, limit in null_limits.items():
            nulls = self.nulls.get(name, 0)
            if self.rows and nulls / self.rows > limit:
                violations.append(
                    FieldViolation(
                        name,
                        Rule.MAX_NULL_FRACTION.value,
                        f"{nulls / self.rows:.1%} nulls ({nulls} of {self.rows} rows), more "
                        f"than the allowed {limit:.1%}",
                        count=nulls,
                    )
                )
        return violations, notices, self.failing_rows

    def _violation(self, t: _Tally) -> FieldViolation:
        shown = ", ".join(
            f"row {r}: {_repr(v)}"
            for r, v in zip(t.rows[:SHOWN_IN_MESSAGE], t.values, strict=False)
        )
        message = f"{t.count} × {t.what}" + (f" ({shown})" if shown else "")
        return FieldViolation(t.field, t.rule.value, message, t.count, list(t.rows), list(t.values))


def _json_value(value: Any) -> Any:
    """A value as JSON can hold it: NaN and infinities as strings, times in ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _repr(value: Any) -> str:
    if value == REDACTED:
        return REDACTED
    if isinstance(value, list) and len(value) > 4:
        return repr(value[:4])[:-1] + f", … {len(value)} values]"
    return repr(value)
