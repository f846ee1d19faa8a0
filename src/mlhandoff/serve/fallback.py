"""A circuit breaker: stop calling a failing primary model for a cool-down period."""

from __future__ import annotations

import time


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures. After ``cooldown_s`` calls go through again
    (half-open): a success closes it, the first failure opens it for another cool-down."""

    def __init__(self, failures: int = 5, cooldown_s: float = 30.0) -> None:
        self._threshold = failures
        self._cooldown = cooldown_s
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None and time.monotonic() - self._opened_at < self._cooldown

    def allow(self) -> bool:
        """Closed, or open past its cool-down (half-open)."""
        return not self.is_open

    def record(self, ok: bool) -> None:
        if ok:
            self._failures = 0
            self._opened_at = None
            return
        self._failures += 1
        if self._failures >= self._threshold:
            self._opened_at = time.monotonic()
