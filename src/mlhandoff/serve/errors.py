"""HTTP errors with a stable code per case; bodies never echo payloads or PII values."""

from __future__ import annotations

from typing import Any

from mlhandoff.errors import Violation
from mlhandoff.render.openapi import ERROR_CODES


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
