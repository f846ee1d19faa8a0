"""In-process prediction latency after warm-up, against the spec's ``api.latency_budget``.

In-process time is a floor for what the API will see (no network, no serialisation), so a
budget missed here will be missed in production. The budget is per request: single-row
latency is judged; batch latency (``api.max_batch_size`` rows) is reported with throughput.
Numbers depend on the machine, which is recorded with them; they are never written into a bundle.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.evaluate.report import ResultRow
from mlhandoff.evaluate.verdicts import Bound
from mlhandoff.spec.models import LatencyBudget

QUANTILES = (50, 95, 99)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def _timings(fn: Callable[[], object], warmup: int, repeats: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out * 1000.0


def _summary(ms: np.ndarray) -> dict[str, float]:
    q = np.percentile(ms, QUANTILES)
    return {f"p{p}_ms": float(v) for p, v in zip(QUANTILES, q, strict=True)} | {
        "mean_ms": float(ms.mean()),
        "calls": len(ms),
    }


def measure(
    predict: Callable[[pa.Table], object],
    inputs: pa.Table,
    *,
    batch_size: int,
    warmup: int = 20,
    repeats: int = 200,
    batch_repeats: int = 20,
) -> dict[str, Any]:
    """Latency of single-row and batch calls of ``predict`` on rows of ``inputs``."""
    rows = [inputs.slice(i % inputs.num_rows, 1) for i in range(min(inputs.num_rows, 64))]
    counter = iter(range(1 << 62))
    single = _timings(lambda: predict(rows[next(counter) % len(rows)]), warmup, repeats)
    size = min(batch_size, inputs.num_rows)
    batch_input = inputs.slice(0, size)
    batch = _timings(lambda: predict(batch_input), max(2, warmup // 5), batch_repeats)
    batch_stats = _summary(batch) | {
        "rows": size,
        "rows_per_s": float(size / (np.median(batch) / 1000.0)),
    }
    return {"single": _summary(single), "batch": batch_stats, "machine": machine()}


def budget_rows(result: dict[str, Any], budget: LatencyBudget | None) -> list[ResultRow]:
    """One row per quantile the budget names, judged on single-row latency."""
    if budget is None:
        return []
    rows = []
    for q in QUANTILES:
        limit = getattr(budget, f"p{q}_ms")
        if limit is None:
            continue
        value = float(result["single"][f"p{q}_ms"])
        bound = Bound("<=", limit)
        rows.append(
            ResultRow(
                kind="latency",
                metric=f"p{q} latency, 1 row (ms)",
                bound=str(bound),
                verdict="pass" if bound.holds(value) else "fail",
                value=value,
                reason=f"{result['single']['calls']} calls after warm-up on {result['machine']['processor']} ({result['machine']['cpus']} CPUs)",
            )
        )
    return rows
