"""``mlhandoff loadtest``: drive a server with golden-set requests; compare with the budget.

Bounded in time and in count; meant for 127.0.0.1 or a staging address you own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.spec.models import HandoffSpec


@dataclass
class LoadResult:
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.failures.values())

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.duration_s if self.duration_s else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.statuses.get(200, 0),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "duration_s": round(self.duration_s, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p95_ms": round(self.percentile(95), 3),
            "p99_ms": round(self.percentile(99), 3),
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, linearly interpolated (numpy's default): the one definition the
    load test, the benches and their reports use."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def golden_records(bundle: Bundle) -> list[dict[str, Any]]:
    """One /predict record (JSON-ready) per golden row."""
    inputs, _ = bundle.golden()
    return [{k: _json(v) for k, v in row.items()} for row in inputs.to_pylist()]


def golden_bodies(bundle: Bundle) -> list[bytes]:
    """One single-record /predict body per golden row."""
    return [orjson.dumps(record) for record in golden_records(bundle)]


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


async def run_load(
    url: str,
    bodies: list[bytes],
    *,
    concurrency: int = 8,
    duration_s: float = 10.0,
    max_requests: int = 1_000_000,
    token: str | None = None,
    path: str = "/predict",
) -> LoadResult:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    result = LoadResult(duration_s=0.0)
    sent = 0
    deadline = time.perf_counter() + duration_s
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30.0
    ) as client:

        async def worker(offset: int) -> None:
            nonlocal sent
            i = offset
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                body = bodies[i % len(bodies)]
                i += concurrency
                start = time.perf_counter()
                try:
                    response = await client.post(path, content=body)
                except httpx.HTTPError as exc:
                    result.failures[type(exc).__name__] += 1
                    continue
                result.statuses[response.status_code] += 1
                if response.status_code == 200:
                    result.latencies_ms.append((time.perf_counter() - start) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        result.duration_s = time.perf_counter() - started
    return result


def budget_rows(
    result: LoadResult, spec: HandoffSpec
) -> list[tuple[str, float, float | None, bool | None]]:
    """(measure, value, budget, met) rows for the spec's latency and throughput budget."""
    budget = spec.api.latency_budget
    rows: list[tuple[str, float, float | None, bool | None]] = []
    for q, attr in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms")):
        limit = getattr(budget, attr) if budget else None
        value = result.percentile(q)
        rows.append((f"p{q} latency (ms)", value, limit, None if limit is None else value <= limit))
    target = spec.api.throughput_rps
    rows.append(
        (
            "throughput (req/s)",
            result.throughput,
            target,
            None if target is None else result.throughput >= target,
        )
    )
    return rows
