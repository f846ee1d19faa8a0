"""What every protocol shares: a body's records or columns → one pyarrow Table typed as the
data contract says, ready for the one contract validator.

Each protocol (``serve/protocols/``) only shapes its body into records or columns; every rule
about values is the data contract's, checked by :class:`~mlhandoff.contract.CompiledContract`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from mlhandoff.contract.validate import arrow_type
from mlhandoff.errors import Violation
from mlhandoff.serve.errors import ApiError
from mlhandoff.spec.models import DataContract, FieldSpec

Columns = dict[str, list[Any]]
Records = list[dict[str, Any]]


def malformed(message: str) -> ApiError:
    return ApiError(400, message)


def record_list(value: Any, where: str) -> Records:
    """A non-empty JSON array of objects, or 400 naming where it was expected."""
    if not isinstance(value, list) or not value:
        raise malformed(f"'{where}' must be a non-empty array of records")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise malformed(
                f"'{where}[{i}]' must be a JSON object (a record), got {type(item).__name__}"
            )
    return value


def columnar(value: dict[str, Any], where: str) -> Columns:
    """Columns of equal, non-zero length, or 400."""
    lengths = {len(v) for v in value.values() if isinstance(v, list)}
    if len(lengths) != 1 or not all(isinstance(v, list) for v in value.values()):
        raise malformed(f"'{where}' columns must all be arrays of the same length")
    if lengths == {0}:
        raise malformed(f"'{where}' columns are empty")
    return dict(value)


def to_table(data: Columns | Records, contract: DataContract, max_rows: int) -> pa.Table:
    """A table typed as the contract says; values of the wrong JSON type are 422 violations."""
    columns = data if isinstance(data, dict) else _records_to_columns(data)
    rows = len(next(iter(columns.values()))) if columns else 0
    if rows > max_rows:
        raise ApiError(413, f"the batch has {rows} records; api.max_batch_size allows {max_rows}")
    arrays: dict[str, pa.Array] = {}
    violations: list[Violation] = []
    for name, values in columns.items():
        spec = contract.fields.get(name)
        if spec is None:
            arrays[name] = pa.nulls(rows)  # kept so the validator reports it as unexpected
            continue
        array, problem = _typed(values, spec)
        if problem:
            violations.append(Violation(name, "type", problem, count=rows))
        else:
            arrays[name] = array
    if violations:
        raise ApiError(422, "records break the data contract", violations=violations)
    return pa.table(arrays) if arrays else pa.table({})


def _records_to_columns(records: Records) -> Columns:
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    if len(records) == 1:
        return {k: [v] for k, v in records[0].items()}
    return {k: [r.get(k) for r in records] for k in keys}


def _typed(values: list[Any], spec: FieldSpec) -> tuple[pa.Array | None, str | None]:
    """JSON values → the field's Arrow type. Text is accepted where JSON has no type of its own
    (ISO 8601 dates and timestamps) and numbers where a category is spelled as a code."""
    kind = spec.type
    if kind in ("int", "float", "array") and any(type(v) is bool for v in values):
        return None, f"expected {kind}, got a boolean"
    try:
        if kind == "timestamp":
            return _timestamps(values, spec.timezone), None
        if kind == "date":
            return pa.array(values, type=pa.string()).cast(pa.date32()), None
        if kind in ("string", "category") and any(
            isinstance(v, int) and type(v) is not bool for v in values
        ):
            values = [str(v) if isinstance(v, int) and type(v) is not bool else v for v in values]
        return pa.array(values, type=arrow_type(spec)), None
    except (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        pa.ArrowNotImplementedError,
        OverflowError,
        TypeError,
        ValueError,
    ):
        sample = next((v for v in values if v is not None), None)
        return None, f"expected {kind}, got {type(sample).__name__}"


def _timestamps(values: list[Any], timezone: str | None) -> pa.Array:
    if len(values) <= 16 and all(isinstance(v, str) or v is None for v in values):
        parsed = _parse_few(values, timezone)
        if parsed is not None:
            return parsed
    strings = pa.array(values, type=pa.string())
    try:  # with an offset ("Z", "+01:00"): an instant, kept in the declared zone (else UTC)
        return strings.cast(pa.timestamp("us", tz=timezone or "UTC"))
    except pa.ArrowInvalid:
        # no offset: naive; the contract reports the timezone rule where one is required
        return strings.cast(pa.timestamp("us"))


def _parse_few(values: list[Any], timezone: str | None) -> pa.Array | None:
    """A request's few timestamps parsed in Python (holding the GIL, unlike an Arrow cast that
    waits to get it back from a busy model thread). None: let Arrow decide."""
    try:
        stamps = [None if v is None else dt.datetime.fromisoformat(v) for v in values]
    except ValueError:
        return None
    aware = {s.tzinfo is not None for s in stamps if s is not None}
    if aware == {True}:
        return pa.array(stamps, type=pa.timestamp("us", tz=timezone or "UTC"))
    if aware == {False}:
        return pa.array(stamps, type=pa.timestamp("us"))
    return None
