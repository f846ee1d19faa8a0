"""HTTP errors with a stable code per case; bodies never echo payloads or PII values."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from mlhandoff.errors import Violation
from mlhandoff.http_codes import ERROR_CODES, MORE_CODES


class ApiError(Exception):
    """An answer other than 200: status, stable code, message, optional violations/headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        violations: list[Violation] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES[status][0]
        if code is not None and MORE_CODES.get(code) != status:
            raise ValueError(f"'{code}' is not an error code of status {status} (http_codes.py)")
        self.message = message
        self.violations = violations or []
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        }
        if self.violations:
            error["violations"] = [
                {
                    "field": v.field,
                    "rule": v.rule,
                    "message": v.message,
                    "count": v.count,
                    "rows": v.rows,
                }
                for v in self.violations
            ]
        return {"error": error}

    def response(self, request_id: str, headers: dict[str, str] | None = None) -> Response:
        return Response(
            orjson.dumps(self.body(request_id)),
            status_code=self.status,
            media_type="application/json",
            headers={**(headers or {}), **self.headers},
        )


def without_pii_values(violations: list[Violation], pii: set[str]) -> list[Violation]:
    """Violations of PII fields keep field, rule and count, never values."""
    return [
        v
        if v.field not in pii
        else Violation(
            v.field,
            v.rule,
            f"{v.count} value(s) break rule '{v.rule}' (values of PII fields are not shown)",
            v.count,
            v.rows,
        )
        for v in violations
    ]
