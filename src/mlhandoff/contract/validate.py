"""The data contract's one validator, compiled once and run vectorized on Arrow columns.

``verify`` (golden set), ``pack`` (sample) and the CLI all go through :class:`CompiledContract`;
there is no second validator to keep in sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.errors import ContractViolation, Violation
from mlhandoff.spec.models import DataContract, FieldSpec

_ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "category": pa.string(),
    "date": pa.date32(),
}


@dataclass
class ValidationReport:
    """Every broken rule, with counts and the first offending rows."""

    rows: int
    violations: list[Violation] = field(default_factory=list)

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
            "violations": [
                {
                    "field": v.field,
                    "rule": v.rule,
                    "message": v.message,
                    "count": v.count,
                    "rows": v.rows,
                }
                for v in self.violations
            ],
        }


class CompiledContract:
    """A data contract prepared for repeated validation of tables."""

    def __init__(self, contract: DataContract, *, max_examples: int = 5) -> None:
        self.contract = contract
        self.max_examples = max_examples
        self._allowed_extra = {contract.label} if contract.label else set()
        self._domains = {
            name: pa.array([str(v) for v in spec.domain])
            for name, spec in contract.fields.items()
            if spec.domain
        }

    def validate(
        self, table: pa.Table, *, allow_extra: bool = False, batch_rules: bool = True
    ) -> ValidationReport:
        """Check every rule; ``batch_rules=False`` skips rules about a whole batch (null
        fraction), which mean nothing for a single request."""
        report = ValidationReport(rows=table.num_rows)
        present = set(table.column_names)
        missing = [name for name in self.contract.fields if name not in present]
        extra = [name for name in table.column_names if name not in self.contract.fields]
        if missing:
            report.violations.append(
                _schema_violation("missing_column", missing, "seen in the contract, yet missing")
            )
        unexpected = [n for n in extra if n not in self._allowed_extra]
        if unexpected and not allow_extra:
            report.violations.append(
                _schema_violation("unexpected_column", unexpected, "not in the contract")
            )
        for name, spec in self.contract.fields.items():
            if name in present:
                report.violations.extend(
                    self._check_column(name, spec, table.column(name), batch_rules)
                )
        return report

    def _check_column(
        self, name: str, spec: FieldSpec, column: pa.ChunkedArray, batch_rules: bool = True
    ) -> list[Violation]:
        typed, problem = _coerce(column, spec)
        if typed is None:
            return [Violation(name, "type", problem or f"expected {spec.type}", count=len(column))]
        found: list[Violation] = []
        rows = len(typed)
        nulls = typed.is_null()
        infinite = None
        if spec.type == "float":
            nulls = pc.or_kleene(nulls, pc.is_nan(typed))
            infinite = pc.fill_null(pc.is_inf(typed), False)
            found += self._rule(name, "finite", infinite, typed, "infinite value")
        null_count = pc.sum(nulls).as_py() or 0
        if not spec.nullable and null_count:
            found += self._rule(
                name, "not_null", nulls, typed, "null value in a non-nullable field"
            )
        if (
            batch_rules
            and spec.max_null_fraction is not None
            and rows
            and null_count / rows > spec.max_null_fraction
        ):
            found.append(
                Violation(
                    name,
                    "max_null_fraction",
                    f"{null_count / rows:.1%} nulls, more than the allowed {spec.max_null_fraction:.1%}",
                    count=null_count,
                )
            )
        in_range = pc.invert(infinite) if spec.type == "float" else None
        if spec.min is not None:
            below = _and(
                pc.fill_null(pc.less(typed, _bound(spec.min, typed.type)), False), in_range
            )
            found += self._rule(name, "min", below, typed, f"below min {spec.min:g}")
        if spec.max is not None:
            above = _and(
                pc.fill_null(pc.greater(typed, _bound(spec.max, typed.type)), False), in_range
            )
            found += self._rule(name, "max", above, typed, f"above max {spec.max:g}")
        if name in self._domains:
            as_text = typed if pa.types.is_string(typed.type) else pc.cast(typed, pa.string())
            outside = pc.invert(
                pc.fill_null(pc.is_in(as_text, value_set=self._domains[name]), True)
            )
            found += self._rule(name, "domain", outside, typed, "not in the declared domain")
        if spec.id:
            counts = pc.value_counts(typed.drop_null())
            dup_values = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
            if len(dup_values):
                dup_mask = pc.is_in(typed, value_set=dup_values)
                found += self._rule(name, "unique", dup_mask, typed, "duplicate id in the batch")
        if spec.type == "timestamp" and spec.timezone:
            tz = column.type.tz if pa.types.is_timestamp(column.type) else None
            if tz is None:
                found.append(
                    Violation(
                        name,
                        "timezone",
                        f"naive timestamps; the contract requires {spec.timezone}",
                        rows,
                    )
                )
        return found

    def _rule(self, name: str, rule: str, mask: Any, values: Any, message: str) -> list[Violation]:
        count = pc.sum(mask).as_py() or 0
        if not count:
            return []
        rows = pc.indices_nonzero(mask)[: self.max_examples].to_pylist()
        shown = ", ".join(f"row {r}: {values[r].as_py()!r}" for r in rows[:3])
        return [Violation(name, rule, f"{count} × {message} ({shown})", count=count, rows=rows)]


def _schema_violation(rule: str, names: list[str], what: str) -> Violation:
    shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
    return Violation(field=names[0], rule=rule, message=f"{what}: {shown}", count=len(names))


def _coerce(column: pa.ChunkedArray, spec: FieldSpec) -> tuple[pa.ChunkedArray | None, str | None]:
    """The column cast to the contract's type, or None and why it cannot be."""
    source = column.type
    if pa.types.is_dictionary(source):
        column = column.cast(source.value_type)
        source = source.value_type
    if spec.type == "timestamp":
        if pa.types.is_timestamp(source):
            return column, None
        return None, f"expected timestamp, got {source}"
    target = _ARROW_TYPES[spec.type]
    if spec.type in ("int", "float") and not (
        pa.types.is_integer(source) or pa.types.is_floating(source)
    ):
        return None, f"expected {spec.type}, got {source}"
    if spec.type == "int" and pa.types.is_floating(source):
        whole = pc.fill_null(pc.equal(pc.floor(column), column), True)
        if not pc.all(whole).as_py():
            return None, "expected int, got fractional numbers"
    if spec.type == "bool" and not pa.types.is_boolean(source):
        return None, f"expected bool, got {source}"
    if spec.type in ("string", "category") and not (
        pa.types.is_string(source)
        or pa.types.is_large_string(source)
        or pa.types.is_integer(source)
    ):
        return None, f"expected {spec.type}, got {source}"
    try:
        return column.cast(target), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return None, f"expected {spec.type}, got {source} ({exc})"


def _and(mask: Any, other: Any) -> Any:
    """Infinite values are reported once, by the ``finite`` rule, not again by min/max."""
    return mask if other is None else pc.and_(mask, other)


def _bound(value: float, arrow_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_integer(arrow_type):
        return pa.scalar(value, pa.float64())
    return pa.scalar(value, arrow_type if pa.types.is_floating(arrow_type) else pa.float64())
