"""Synthetic canary traffic in the prediction log's layout (``rollout/logs.py``): two versions
answering a fraud scorer's requests, with latency, status, scores and delayed labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Arm:
    """How one version behaves: its share of frauds caught, its false-positive share, its 5xx
    rate and its latency (log-normal: median in ms and the sd of log latency)."""

    recall: float = 0.6
    false_positive: float = 0.003
    error_rate: float = 0.001
    median_ms: float = 8.0
    log_sd: float = 0.5


def traffic(
    directory: Path,
    *,
    requests: int,
    candidate: Arm,
    baseline: Arm,
    share: float,
    hours: float,
    candidate_version: str = "1.0.0",
    baseline_version: str = "0.9.0",
    prevalence: float = 0.015,
    seed: int = 0,
    files: int = 4,
) -> pa.Table:
    """Write ``requests`` logged requests over ``hours`` into ``directory`` (``files`` Parquet
    files); returns the delayed labels (transaction_id, is_fraud)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    seconds = np.sort(rng.uniform(0, hours * 3600, requests))
    is_candidate = rng.random(requests) < share
    fraud = rng.random(requests) < prevalence

    def per_arm(attr: str) -> np.ndarray:
        return np.where(is_candidate, getattr(candidate, attr), getattr(baseline, attr))

    flagged = np.where(
        fraud,
        rng.random(requests) < per_arm("recall"),
        rng.random(requests) < per_arm("false_positive"),
    )
    score = np.where(flagged, rng.uniform(0.5, 1.0, requests), rng.uniform(0.0, 0.5, requests))
    failed = rng.random(requests) < per_arm("error_rate")
    latency = per_arm("median_ms") * np.exp(rng.normal(0.0, 1.0, requests) * per_arm("log_sd"))
    ids = np.char.add("tx_", np.char.zfill(np.arange(requests).astype(str), 9))
    at = np.datetime64(START.replace(tzinfo=None), "us") + (seconds * 1e6).astype("timedelta64[us]")
    table = pa.table(
        {
            "request_id": pa.array(np.char.add("req-", ids.astype(str))),
            "logged_at": pa.array(at, pa.timestamp("us", tz="UTC")),
            "model_version": pa.array(np.where(is_candidate, candidate_version, baseline_version)),
            "latency_ms": pa.array(latency),
            "status": pa.array(np.where(failed, 500, 200).astype(np.int32)),
            "input.transaction_id": pa.array(ids.astype(str)),
            "output.score": pa.array(np.where(failed, np.nan, score), from_pandas=True),
            "output.label": pa.array(np.where(failed, -1, flagged.astype(np.int64)), mask=failed),
        }
    )
    for i, part in enumerate(np.array_split(np.arange(requests), files)):
        if len(part):
            pq.write_table(
                table.slice(int(part[0]), len(part)), directory / f"predictions-{i:05d}.parquet"
            )
    return pa.table({"transaction_id": ids.astype(str), "is_fraud": fraud.astype(np.int64)})
