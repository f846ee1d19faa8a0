"""The seed's mini challenge: a new version with better accuracy and twice the latency.

``mlhandoff diff`` applies the upgrade rule offline (no-go: latency), the rollout plan sizes the
latency guardrail, and the judge rolls back the candidate whose p95 ratio breaks it in canary
traffic, although its accuracy is better there too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from mlhandoff.cli import app
from rollout_traffic import Arm, traffic
from test_evaluate_support import make_bundle

runner = CliRunner()

WEAK = """
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    return np.clip(0.5 + (x - 50) / 400.0 + np.sin(x * 7) * 0.2, 0, 1)
"""
STRONG_BUT_SLOW = """
import time
import numpy as np

def predict(frame):
    time.sleep(0.004)  # a bigger model: better scores, much slower
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""
ACCEPTANCE = {
    "bootstrap": {"resamples": 100},
    "criteria": [{"metric": "roc_auc", "threshold": 0.6}],
    "upgrade": {"primary": "better", "max_latency_ratio": 1.5},
}
ROLLOUT = {
    "rollout": {
        "strategy": "canary",
        "steps": [
            {"traffic_percent": 10, "duration": "1h"},
            {"traffic_percent": 100, "duration": "1d"},
        ],
        "graduate_when": [
            {"metric": "error_rate", "tolerance": 0.002, "critical": True, "expected": 0.001},
            {"metric": "latency_p95", "relative_tolerance": 0.5, "critical": True, "sd": 0.5},
            {"metric": "accuracy", "goal": "better", "mde": 0.002, "expected": 0.99},
        ],
    },
    "rollback": {"previous_version": "1.0.0"},
}


def test_better_accuracy_twice_the_latency_is_rolled_back(tmp_path: Path) -> None:
    old = make_bundle(tmp_path, "scorer", code=WEAK, acceptance=ACCEPTANCE, version="1.0.0")
    new = make_bundle(
        tmp_path,
        "scorer",
        code=STRONG_BUT_SLOW,
        acceptance=ACCEPTANCE,
        version="1.1.0",
        sections=ROLLOUT,
    )
    # 1. offline: the upgrade rule sees the gain and the slowdown, and says no-go for latency
    diff = runner.invoke(app, ["diff", str(old), str(new), "--json"])
    assert diff.exit_code == 1, diff.output
    report = json.loads(diff.output)
    ratio = report["latency"]["p95_ratio"]
    assert ratio > 1.5 and report["decision"] == "no-go"
    assert [r for r in report["reasons"] if "p95 single-row latency grows" in r]
    assert not [r for r in report["reasons"] if "roc_auc" in r]  # the accuracy gain is real

    # 2. the plan sizes the latency guardrail next to the accuracy lift
    plan = runner.invoke(app, ["rollout", "plan", str(new), "--traffic-rps", "200", "--json"])
    assert plan.exit_code == 0, plan.output
    latency = next(m for m in json.loads(plan.output)["metrics"] if m["metric"] == "latency_p95")
    assert latency["margin"] == 0.5 and latency["n_sequential"] > 0

    # 3. in canary traffic the candidate answers twice as slowly and more accurately
    candidate = Arm(recall=0.8, false_positive=0.001, median_ms=2 * 8.0)
    labels = traffic(
        tmp_path / "logs",
        requests=60_000,
        candidate=candidate,
        baseline=Arm(),
        share=0.1,
        hours=2,
        candidate_version="1.1.0",
        baseline_version="1.0.0",
    )
    pq.write_table(labels.rename_columns(["transaction_id", "y"]), tmp_path / "labels.parquet")
    judged = runner.invoke(
        app,
        [
            "rollout",
            "judge",
            str(new),
            "--logs",
            str(tmp_path / "logs"),
            "--labels",
            str(tmp_path / "labels.parquet"),
            "--join-key",
            "transaction_id",
            "--json",
        ],
    )
    assert judged.exit_code == 1, judged.output
    judgement = json.loads(judged.output)
    assert judgement["verdict"] == "rollback" and judgement["next_weight"] == 0
    rules = {r["metric"]: r for r in judgement["rules"]}
    assert rules["accuracy"]["effect"] > 0  # better, and still rolled back
    assert rules["latency_p95"]["decision"] == "harmful"
    assert rules["latency_p95"]["sequence"][0] > 1.5
    assert judgement["reasons"][0].startswith(
        "critical rule failed: latency_p95 at most 1.5x the baseline's"
    )
