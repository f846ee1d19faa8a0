"""Acceptance end to end: spec syntax, pack-time measurement, verify, the evaluate command, bad input."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

import mlhandoff
from mlhandoff.cli import app
from mlhandoff.errors import ContractViolation, EvaluationError, SpecError
from mlhandoff.evaluate import evaluate_bundle
from mlhandoff.spec import parse_spec
from test_evaluate_support import labelled, make_bundle

runner = CliRunner()

CRITERIA = {
    "bootstrap": {"resamples": 300, "seed": 1},
    "min_slice_size": 50,
    "criteria": [
        {"metric": "roc_auc", "threshold": 0.7},
        {"metric": "log_loss", "threshold": 0.1, "primary": False},
        {"metric": "recall@precision0.6", "threshold": 0.2, "primary": False},
    ],
    "guardrails": [
        {"metric": "recall", "by": "g", "threshold": 0.3},
        {"metric": "demographic_parity_difference", "by": "g", "threshold": 0.3},
    ],
}


def _run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("eval"), "scorer", acceptance=CRITERIA)


def _spec(acceptance: dict, task: str = "binary_classification") -> str:
    return yaml.safe_dump(
        {
            "name": "m",
            "version": "1",
            "model": {"path": "m.skops", "task": task, "version_tag": "v1"},
            "data_contract": {"label": "y", "fields": {"x": {"type": "float"}}},
            "acceptance": acceptance,
        },
        sort_keys=False,
    )


def test_unknown_metric_in_the_spec_is_located_with_suggestions() -> None:
    text = _spec({"criteria": [{"metric": "roc_aux", "threshold": 0.8}]})
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    issue = info.value.issues[0]
    assert issue.path == "acceptance.criteria[0].metric" and issue.line is not None
    assert "did you mean 'roc_auc'" in issue.message
    with pytest.raises(SpecError, match="does not apply to regression"):
        parse_spec(_spec({"criteria": [{"metric": "roc_auc", "threshold": 0.8}]}, "regression"))
    with pytest.raises(SpecError, match="needs threshold, min_absolute_change"):
        parse_spec(_spec({"criteria": [{"metric": "roc_auc"}]}))
    with pytest.raises(SpecError, match="name the slice column in 'by'"):
        parse_spec(
            _spec({"guardrails": [{"metric": "demographic_parity_ratio", "threshold": 0.8}]})
        )
    with pytest.raises(SpecError, match=r"acceptance\.query"):
        parse_spec(_spec({"criteria": [{"metric": "ndcg@10", "threshold": 0.5}]}, "ranking"))


def test_mlflow_words_are_accepted() -> None:
    spec = parse_spec(
        _spec(
            {
                "criteria": [
                    {
                        "metric": "log_loss",
                        "threshold": 0.5,
                        "min_absolute_change": 0.01,
                        "min_relative_change": 0.02,
                        "greater_is_better": False,
                    }
                ]
            }
        )
    )
    c = spec.acceptance.criteria[0]
    assert (c.threshold, c.min_absolute_change, c.min_relative_change) == (0.5, 0.01, 0.02)
    with pytest.raises(SpecError, match="contradicts greater_is_better"):
        parse_spec(
            _spec(
                {
                    "criteria": [
                        {"metric": "roc_auc", "op": "<=", "threshold": 1, "greater_is_better": True}
                    ]
                }
            )
        )


def test_pack_measures_and_verify_recomputes(bundle: Path) -> None:
    files = set(json.loads((bundle / "MANIFEST.json").read_text())["files"])
    assert {"data/eval_sample.parquet", "reports/acceptance.json"} <= files
    report = json.loads((bundle / "reports/acceptance.json").read_text())
    rows = {(r["kind"], r["metric"], r["by"]): r for r in report["rows"]}
    auc = rows[("criterion", "roc_auc", None)]
    assert auc["verdict"] == "pass" and auc["low"] < auc["value"] < auc["high"]
    assert "created_at" not in report and report["resamples"] == 300
    # slice c (about 5% of 600 rows) is below min_slice_size: reported, never silently passed
    recall = rows[("guardrail", "recall", "g")]
    small = next(s for s in recall["slices"] if s["name"] == "c")
    assert small["value"] is None and "too small to judge" in small["note"]
    assert recall["verdict"] == "inconclusive"
    readme = (bundle / "docs/README.md").read_text()
    assert "| primary | roc_auc | >= 0.7 |" in readme and "✅ pass" in readme
    assert "too small to judge" in readme
    assert "| roc_auc | >= 0.7 |" in (bundle / "docs/MODEL_CARD.md").read_text()
    checks = {r.id: r for r in mlhandoff.verify(bundle).results}
    assert checks["acceptance_measured"].status == "warn"  # inconclusive slices: warn, not fail
    assert "recomputed, identical" in checks["acceptance_measured"].detail
    assert checks["repro_validated"].status == "skipped"


def test_verify_fails_when_recorded_results_were_edited(bundle: Path, tmp_path: Path) -> None:
    from mlhandoff.bundle.manifest import build_manifest, read_manifest, write_manifest

    copy = tmp_path / bundle.name
    shutil.copytree(bundle, copy)
    path = copy / "reports/acceptance.json"
    report = json.loads(path.read_text())
    report["rows"][0]["value"] = 0.99
    path.write_text(json.dumps(report))
    meta = {
        k: v
        for k, v in read_manifest(copy).items()
        if k in ("name", "version", "created_at", "created_by")
    }
    write_manifest(copy, build_manifest(copy, meta))  # re-sign: integrity passes, numbers do not
    check = {r.id: r for r in mlhandoff.verify(copy).results}["acceptance_measured"]
    assert check.status == "fail" and "roc_auc: value recorded 0.99" in check.detail


def test_evaluate_command_json_junit_and_exit_codes(bundle: Path, tmp_path: Path) -> None:
    junit = tmp_path / "acceptance.xml"
    result = _run("evaluate", str(bundle), "--json", "--junit", str(junit), "--no-latency")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and len(report["rows"]) == 5
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "5" and suite.get("failures") == "0"
    names = [case.get("name") for case in suite.iter("testcase")]
    assert "roc_auc >= 0.7" in names
    # a secondary criterion that fails is shown, but does not fail the run
    secondary = next(r for r in report["rows"] if r["metric"] == "log_loss")
    assert secondary["verdict"] == "fail" and not secondary["primary"]

    data = tmp_path / "hard.parquet"
    table = labelled(400, seed=9)
    flipped = pa.array(1 - table.column("y").to_numpy())
    pq.write_table(table.set_column(2, "y", flipped), data)  # the model is now anti-correlated
    failed = _run("evaluate", str(bundle), "--data", str(data), "--no-latency")
    assert failed.exit_code == 1
    assert "roc_auc" in failed.output and "fail" in failed.output and "FAIL" in failed.output


def test_latency_budget_rows(bundle: Path) -> None:
    report = evaluate_bundle(bundle, resamples=0)
    assert report.latency is not None and report.latency["machine"]["cpus"]
    single = report.latency["single"]
    assert single["p50_ms"] <= single["p95_ms"] <= single["p99_ms"]
    assert report.latency["batch"]["rows_per_s"] > 0
    assert not [r for r in report.rows if r.kind == "latency"]  # the spec sets no budget


def test_latency_budget_is_judged(tmp_path: Path) -> None:
    slow = """
import time
import numpy as np

def predict(frame):
    time.sleep(0.02)
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""
    b = make_bundle(
        tmp_path,
        "slow",
        code=slow,
        api={"latency_budget": {"p50_ms": 5, "p99_ms": 5000}},
        acceptance={
            "criteria": [{"metric": "roc_auc", "threshold": 0.5}],
            "bootstrap": {"resamples": 0},
        },
    )
    report = evaluate_bundle(b)
    latency = {r.metric: r for r in report.rows if r.kind == "latency"}
    assert latency["p50 latency, 1 row (ms)"].verdict == "fail"
    assert latency["p99 latency, 1 row (ms)"].verdict == "pass"
    assert not report.ok


def test_relative_criteria_against_a_baseline(tmp_path: Path) -> None:
    weak = """
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    return np.clip(0.5 + (x - 50) / 400.0 + np.sin(x * 7) * 0.2, 0, 1)
"""
    acceptance = {
        "bootstrap": {"resamples": 300},
        "criteria": [
            {"metric": "roc_auc", "min_absolute_change": 0.0},  # ">= baseline"
            {"metric": "roc_auc", "min_relative_change": 0.5, "primary": False},  # "lift >= 50%"
        ],
    }
    old = make_bundle(tmp_path, "old", code=weak, acceptance=acceptance)
    new = make_bundle(tmp_path, "new", acceptance=acceptance)
    report = evaluate_bundle(new, baseline=old, latency=False)
    better, lift = report.rows
    assert report.baseline == old.name
    assert better.verdict == "pass" and better.baseline is not None
    assert better.baseline.delta is not None and better.baseline.delta_low > 0
    assert lift.verdict in ("fail", "inconclusive") and "gain" in lift.reason
    alone = evaluate_bundle(new, latency=False)
    assert alone.rows[0].verdict == "inconclusive" and "no baseline" in alone.rows[0].reason


def test_single_class_data_is_inconclusive_with_a_clear_reason(
    bundle: Path, tmp_path: Path
) -> None:
    data = tmp_path / "one.parquet"
    table = labelled(300)
    pq.write_table(table.set_column(2, "y", pa.array(np.zeros(300, dtype=np.int64))), data)
    report = evaluate_bundle(bundle, data, latency=False)
    auc = report.rows[0]
    assert auc.verdict == "inconclusive" and auc.value is not None and np.isnan(auc.value)
    assert "single class (0 positive, 300 negative rows)" in auc.reason
    result = _run("evaluate", str(bundle), "--data", str(data), "--json", "--no-latency")
    assert result.exit_code == 0  # inconclusive is not a failure
    assert json.loads(result.output)["rows"][0]["value"] is None


def test_label_missing_or_of_the_wrong_type(bundle: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nolabel.parquet"
    pq.write_table(labelled(100).drop_columns(["y"]), missing)
    with pytest.raises(
        EvaluationError, match="the label 'y' is missing; the data has columns: x, g"
    ):
        evaluate_bundle(bundle, missing, latency=False)
    text = tmp_path / "textlabel.parquet"
    t = labelled(100)
    pq.write_table(t.set_column(2, "y", pa.array(["yes", "no"] * 50)), text)
    result = _run("evaluate", str(bundle), "--data", str(text))
    assert result.exit_code == 2
    assert "evaluation_invalid" in result.output and "needs 0/1 or boolean labels" in result.output
    counts = tmp_path / "counts.parquet"
    pq.write_table(t.set_column(2, "y", pa.array(np.arange(100))), counts)
    with pytest.raises(EvaluationError, match="must be 0/1 or boolean"):
        evaluate_bundle(bundle, counts, latency=False)
    bad_inputs = tmp_path / "bad.parquet"
    pq.write_table(t.set_column(0, "x", pa.array(np.full(100, 1000.0))), bad_inputs)
    with pytest.raises(ContractViolation):
        evaluate_bundle(bundle, bad_inputs, latency=False)


def test_predictions_with_nan_are_refused(tmp_path: Path) -> None:
    nan_model = """
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    return np.where(x > 99, np.nan, x / 100.0)
"""
    data = labelled(200)
    safe = data.filter(pa.compute.less_equal(data.column("x"), 99))
    b = make_bundle(
        tmp_path,
        "nanny",
        code=nan_model,
        data=safe,
        acceptance={"criteria": [{"metric": "roc_auc", "threshold": 0.5}]},
    )
    risky = tmp_path / "risky.parquet"
    pq.write_table(
        data.set_column(0, "x", pa.array(np.r_[99.5, data.column("x").to_numpy()[1:]])), risky
    )
    result = _run("evaluate", str(b), "--data", str(risky))
    assert result.exit_code == 2
    assert (
        "returned NaN or infinite 'score' for" in result.output
        and "(first at row 0)" in result.output
    )


def test_ranking_needs_a_query_column_and_is_scored_per_query(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 400
    table = pa.table(
        {
            "x": rng.uniform(0, 100, n),
            "g": rng.choice(["a", "b"], n),
            "qid": np.repeat(np.arange(40), 10),
            "rel": rng.integers(0, 3, n),
        }
    )
    ranker = """
import numpy as np

def predict(frame):
    return frame["x"].to_numpy()
"""
    acceptance = {
        "query": "qid",
        "bootstrap": {"resamples": 200},
        "criteria": [{"metric": "ndcg@5", "threshold": 0.1}, {"metric": "mrr", "threshold": 0.1}],
        "guardrails": [{"metric": "ndcg@5", "by": "g", "threshold": 0.05, "min_slice_size": 5}],
    }
    b = make_bundle(
        tmp_path,
        "ranker",
        code=ranker,
        task="ranking",
        data=table,
        acceptance=acceptance,
        label="rel",
    )
    report = mlhandoff.evaluate.recorded_report(mlhandoff.open_bundle(b))
    assert report is not None and report.units == 40 and report.n == 400
    assert all(r.value is not None and 0 <= r.value <= 1 for r in report.rows)
    no_query = tmp_path / "noq.parquet"
    pq.write_table(table.drop_columns(["qid"]), no_query)
    with pytest.raises(EvaluationError, match="the query column 'qid' is missing"):
        evaluate_bundle(b, no_query, latency=False)


def test_baseline_with_an_incompatible_contract_is_refused(bundle: Path, tmp_path: Path) -> None:
    fields = {
        "x": {"type": "float", "min": 0, "max": 100, "description": "A number."},
        "g": {"type": "category", "domain": ["a", "b", "c"], "description": "A group."},
        "z": {"type": "float", "description": "A field the new data lacks."},
    }
    table = labelled().append_column("z", pa.array(np.zeros(600)))
    old = make_bundle(
        tmp_path,
        "needs-z",
        fields=fields,
        data=table,
        acceptance={"criteria": [{"metric": "roc_auc", "threshold": 0.5}]},
    )
    with pytest.raises(EvaluationError, match="data contract is incompatible") as info:
        evaluate_bundle(bundle, baseline=old, latency=False)
    assert "z" in str(info.value)
    result = _run("evaluate", str(bundle), "--baseline", str(old), "--no-latency")
    assert result.exit_code == 2 and "incompatible" in result.output
