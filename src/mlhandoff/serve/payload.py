"""What every protocol shares: a body's records or columns → one pyarrow Table typed as the
data contract says, ready for the one contract validator.

Each protocol (``serve/protocols/``) only shapes its body into records or columns; every rule
about values is the data contract's, checked by :class:`~mlhandoff.contract.CompiledContract`.
"""

from __future__ import annotations

from typing import Any

from mlhandoff.serve.errors import ApiError

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
