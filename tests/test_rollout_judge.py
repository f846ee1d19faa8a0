"""``mlhandoff rollout judge``: candidate vs baseline from the prediction log, with labels;
verdicts and exit codes; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import mannwhitneyu
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.rollout import stats
from rollout_traffic import Arm, traffic

runner = CliRunner()
SCENARIOS = {
    # the same share of frauds flagged, more of them caught: the step-up rate stays the same
    "better": (Arm(recall=0.7, false_positive=0.0015), "graduate", 0),
    "equal": (Arm(), "continue", 4),
    "worse": (Arm(recall=0.45, false_positive=0.00425), "rollback", 1),
    "equal but twice as slow": (Arm(median_ms=16.0), "rollback", 1),
}


def _judge(bundle: Path, logs: Path, *extra: str) -> tuple[int, dict]:
    result = runner.invoke(
        app, ["rollout", "judge", str(bundle), "--logs", str(logs), "--json", *extra]
    )
    return result.exit_code, json.loads(result.output)


@pytest.fixture(scope="module")
def scenario_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Two days of a 25 % canary (step 2 of the example) per scenario, with delayed labels."""
    root = tmp_path_factory.mktemp("rollout")
    out = {}
    for i, (name, (arm, _, _)) in enumerate(SCENARIOS.items()):
        logs = root / f"logs-{i}"
        labels = traffic(
            logs, requests=800_000, candidate=arm, baseline=Arm(), share=0.25, hours=50, seed=i
        )
        pq.write_table(labels, root / f"labels-{i}.parquet")
        out[name] = (logs, root / f"labels-{i}.parquet")
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_scenario_gets_its_verdict(example_bundle: Path, scenario_logs, name: str) -> None:
    logs, labels = scenario_logs[name]
    _, verdict, code = SCENARIOS[name]
    exit_code, judgement = _judge(
        example_bundle, logs, "--labels", str(labels), "--join-key", "transaction_id"
    )
    assert (exit_code, judgement["verdict"]) == (code, verdict), judgement["reasons"]
    assert judgement["step"] == 2 and judgement["candidate"] == "1.0.0"
    assert judgement["baseline"] == "0.9.0"  # rollback.previous_version, name prefix dropped
    rules = {r["metric"]: r for r in judgement["rules"]}
    if name == "better":
        assert rules["recall"]["decision"] == "proven" and judgement["next_weight"] == 100
    if name == "equal":
        assert rules["recall"]["decision"] == "undecided"
        assert any("recall: not yet proven" in r for r in judgement["reasons"])
    if name == "worse":
        assert rules["recall"]["classification"] == "low" and rules["recall"]["flagged"]
        assert rules["recall"]["decision"] == "harmful" and rules["recall"]["failing"]
        assert any("under marginal_score" in r for r in judgement["reasons"])
    if name == "equal but twice as slow":
        latency = rules["latency_p95"]
        assert latency["effect"] == pytest.approx(2.0, rel=0.05)
        assert latency["classification"] == "high" and latency["decision"] == "harmful"
        assert any("critical rule failed: latency_p95" in r for r in judgement["reasons"])
        assert judgement["next_weight"] == 0


def test_without_labels_the_lift_has_no_data(example_bundle: Path, scenario_logs) -> None:
    logs, _ = scenario_logs["better"]
    exit_code, judgement = _judge(example_bundle, logs)
    assert exit_code == 4 and judgement["verdict"] == "continue"
    recall = next(r for r in judgement["rules"] if r["metric"] == "recall")
    assert recall["decision"] == "no-data" and "pass --labels" in recall["detail"]


def test_text_output_names_the_verdict(example_bundle: Path, scenario_logs) -> None:
    logs, labels = scenario_logs["equal but twice as slow"]
    result = runner.invoke(
        app,
        [
            "rollout",
            "judge",
            str(example_bundle),
            "--logs",
            str(logs),
            "--labels",
            str(labels),
            "--join-key",
            "transaction_id",
        ],
    )
    assert result.exit_code == 1
    assert "ROLLBACK" in result.output and "critical rule failed: latency_p95" in result.output


def test_too_few_samples_continue_and_never_graduate(example_bundle: Path, tmp_path: Path) -> None:
    better = Arm(recall=0.9, false_positive=0.0)
    labels = traffic(
        tmp_path / "logs", requests=400, candidate=better, baseline=Arm(), share=0.05, hours=30
    )
    pq.write_table(labels, tmp_path / "labels.parquet")
    exit_code, judgement = _judge(
        example_bundle,
        tmp_path / "logs",
        "--labels",
        str(tmp_path / "labels.parquet"),
        "--join-key",
        "transaction_id",
    )
    assert exit_code == 4 and judgement["verdict"] == "continue"
    assert all(r["decision"] in ("no-data", "undecided") for r in judgement["rules"])
    assert any("needs 20,000 requests per arm" in r for r in judgement["reasons"])


def test_a_trigger_rolls_back_after_its_for(example_bundle: Path, tmp_path: Path) -> None:
    """5xx above 1 % for 10 minutes: a candidate failing 3 % of requests is rolled back."""
    traffic(
        tmp_path / "logs",
        requests=200_000,
        candidate=Arm(error_rate=0.03),
        baseline=Arm(),
        share=0.05,
        hours=2,
    )
    exit_code, judgement = _judge(example_bundle, tmp_path / "logs")
    assert exit_code == 1
    (errors, doubling) = judgement["triggers"]
    assert errors["fired"] and not doubling["fired"]
    assert errors["at"].startswith("2026-03-01T00:1")  # ten minutes after its first breach
    assert errors["value"] > 0.01


def test_logs_with_one_arm_are_bad_input(example_bundle: Path, tmp_path: Path) -> None:
    traffic(tmp_path / "logs", requests=2000, candidate=Arm(), baseline=Arm(), share=1.0, hours=1)
    exit_code, judgement = _judge(example_bundle, tmp_path / "logs")
    assert exit_code == 2
    assert "no rows of the baseline 0.9.0" in judgement["error"]["message"]
    assert "1.0.0 (2,000 rows)" in judgement["error"]["message"]
    traffic(tmp_path / "none", requests=2000, candidate=Arm(), baseline=Arm(), share=0.0, hours=1)
    exit_code, judgement = _judge(example_bundle, tmp_path / "none")
    assert (
        exit_code == 2
        and "no row of the log was answered by the candidate 1.0.0"
        in (judgement["error"]["message"])
    )


def test_labels_that_join_to_nothing_are_bad_input(example_bundle: Path, tmp_path: Path) -> None:
    traffic(tmp_path / "logs", requests=2000, candidate=Arm(), baseline=Arm(), share=0.5, hours=1)
    pq.write_table(
        pa.table({"transaction_id": ["other-1", "other-2"], "is_fraud": [0, 1]}),
        tmp_path / "labels.parquet",
    )
    exit_code, judgement = _judge(
        example_bundle,
        tmp_path / "logs",
        "--labels",
        str(tmp_path / "labels.parquet"),
        "--join-key",
        "transaction_id",
    )
    assert exit_code == 2
    assert "none of its 2 labels joins the log on transaction_id" in judgement["error"]["message"]
    exit_code, judgement = _judge(
        example_bundle, tmp_path / "logs", "--labels", str(tmp_path / "labels.parquet")
    )
    assert exit_code == 2 and "go together" in judgement["error"]["message"]
    pq.write_table(
        pa.table({"transaction_id": ["tx_000000001", "tx_000000001"], "is_fraud": [0, 1]}),
        tmp_path / "twice.parquet",
    )
    exit_code, judgement = _judge(
        example_bundle,
        tmp_path / "logs",
        "--labels",
        str(tmp_path / "twice.parquet"),
        "--join-key",
        "transaction_id",
    )
    assert exit_code == 2 and "more than one label" in judgement["error"]["message"]


def test_unreadable_log_files_are_skipped_and_named(example_bundle: Path, tmp_path: Path) -> None:
    traffic(tmp_path / "logs", requests=2000, candidate=Arm(), baseline=Arm(), share=0.5, hours=1)
    (tmp_path / "logs" / "predictions-99999.parquet").write_bytes(b"PAR1 truncated")
    (tmp_path / "logs" / "predictions-x.parquet.partial").write_bytes(b"being written")
    exit_code, judgement = _judge(example_bundle, tmp_path / "logs")
    assert exit_code == 4
    (skipped,) = judgement["skipped_files"]
    assert skipped.startswith("predictions-99999.parquet")


def test_hodges_lehmann_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(3)
    c, b = rng.lognormal(0.2, 1.0, 250), rng.lognormal(0.0, 1.0, 300)
    result = stats.hodges_lehmann(c, b, 0.05)
    pairs = np.sort(np.subtract.outer(c, b).ravel())
    assert result.estimate == pytest.approx(np.median(pairs), rel=1e-9)
    n, m = len(c), len(b)
    k = int(np.floor(n * m / 2 - 1.959963984540054 * np.sqrt(n * m * (n + m + 1) / 12)))
    assert result.interval.low == pytest.approx(pairs[k - 1], rel=1e-9)
    assert result.interval.high == pytest.approx(pairs[n * m - k], rel=1e-9)
    expected = mannwhitneyu(c, b, method="asymptotic", use_continuity=True).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-6)


def test_quantile_sequence_covers_and_shrinks() -> None:
    rng = np.random.default_rng(4)
    values = np.sort(rng.lognormal(0, 0.5, 50_000))
    truth = float(np.exp(0.5 * 1.6448536269514722))
    small = stats.quantile_sequence(values[::50].copy(), 0.95, 0.05)
    large = stats.quantile_sequence(values, 0.95, 0.05)
    assert small.low < truth < small.high and large.low < truth < large.high
    assert large.high - large.low < small.high - small.low
    tiny = stats.quantile_sequence(values[:10], 0.95, 0.05)
    assert tiny.high == np.inf  # ten values cannot bound a p95 from above
