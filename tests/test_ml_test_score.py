"""The ML Test Score from verify's own results: every point names the check behind it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import mlhandoff
from conftest import load_example_module
from mlhandoff.bundle import layout
from mlhandoff.capabilities.ml_test_score import SECTIONS, TESTS
from mlhandoff.cli import app
from mlhandoff.monitor.record import build_record

runner = CliRunner()


@pytest.fixture()
def trust(example_dir: Path) -> dict[str, object]:
    keys = example_dir / "work" / "keys"
    return {"public_keys": [keys / "eli.pub"], "keyring": keys}


def test_the_rubric_has_28_tests_7_per_section() -> None:
    assert len(TESTS) == 28 and len({t.id for t in TESTS}) == 28
    assert [sum(t.section == s for t in TESTS) for s in SECTIONS] == [7, 7, 7, 7]
    for test in TESTS:  # either something can earn it, or it says why nothing can
        assert bool(test.evidence) != bool(test.unchecked), test.id


def test_every_point_comes_from_a_check_that_ran(example_bundle: Path, trust) -> None:
    report = mlhandoff.verify(example_bundle, **trust)
    score = report.ml_test_score
    assert score is not None
    by_title = {r.title: r for r in report.results}
    records = (layout.repro_record(example_bundle).name, layout.monitor_record(example_bundle).name)
    for row in score["tests"]:
        if row["points"] and row["evidence"].startswith(records):
            assert (example_bundle.parent / row["evidence"].split(":")[0]).exists(), row
        elif row["points"]:
            for evidence in row["evidence"].split("; "):
                title, status = evidence.rsplit(": ", 1)
                assert by_title[title].status == status in ("pass", "warn"), row
        elif not row["checkable"]:
            assert row["evidence"].startswith("not checkable here: ")
    for section in SECTIONS:
        rows = [r for r in score["tests"] if r["section"] == section]
        assert score["sections"][section] == sum(r["points"] for r in rows)
    assert score["final"] == min(score["sections"].values())
    points = {r["id"]: r["points"] for r in score["tests"]}
    assert points["model-1"] == 1  # three signed sign-offs
    assert points["model-5"] == 0  # no baseline comparison in the example
    # Automated without a run: Argo rolls back on the spec's triggers; alerts on refused requests
    # and latency, from rules that agree with the spec and a reference profile recounted.
    assert points["infra-7"] == points["monitor-2"] == points["monitor-6"] == 1
    line = report.results[-1]
    assert line.id == "ml_test_score" and line.detail.startswith(f"final {score['final']:g}")


def test_a_failed_check_earns_nothing(example_bundle: Path, tmp_path: Path, trust) -> None:
    copy = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, copy, ignore=shutil.ignore_patterns("signatures"))
    score = mlhandoff.verify(copy, **trust).ml_test_score
    assert score is not None
    row = next(r for r in score["tests"] if r["id"] == "model-1")
    assert row["points"] == 0 and row["evidence"].startswith("not earned: Sign-offs")
    assert "missing" in row["evidence"]


def test_a_repro_record_for_this_digest_earns_the_automated_points(
    example_bundle: Path, tmp_path: Path, trust
) -> None:
    copy = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, copy)
    record = layout.repro_record(copy)
    digest = mlhandoff.open_bundle(copy).digest
    body = {"bundle_digest": digest, "ok": True, "wall_s": 60, "tests": "5 passed",
            "retrain": {"metrics_match": True}, "frictions": []}  # fmt: skip
    record.write_text(json.dumps(body))
    points = {r["id"]: r for r in mlhandoff.verify(copy, **trust).ml_test_score["tests"]}
    assert [points[i]["points"] for i in ("infra-1", "infra-2", "infra-3")] == [1, 1, 1]
    assert points["infra-1"]["evidence"] == f"{record.name}: retrain passed"
    record.write_text(json.dumps({**body, "bundle_digest": "sha256:" + "0" * 64}))
    points = {r["id"]: r for r in mlhandoff.verify(copy, **trust).ml_test_score["tests"]}
    assert [points[i]["points"] for i in ("infra-1", "infra-2", "infra-3")] == [0.5, 0.5, 0]


def test_verify_prints_sections_and_final(example_bundle: Path, trust) -> None:
    args = ["verify", str(example_bundle), "--public-key", str(trust["public_keys"][0])]
    result = CliRunner().invoke(app, [*args, "--keyring", str(trust["keyring"])])
    assert result.exit_code == 0, result.output
    assert "ML Test Score: " in result.output and "(the lowest of Data " in result.output
    assert "model-1" in result.output and "monitor-7" in result.output
    as_json = CliRunner().invoke(app, [*args, "--keyring", str(trust["keyring"]), "--json"])
    score = json.loads(as_json.output)["ml_test_score"]
    assert set(score["sections"]) == set(SECTIONS) and len(score["tests"]) == 28


def test_no_score_for_a_bundle_that_cannot_be_opened(tmp_path: Path) -> None:
    assert mlhandoff.verify(tmp_path).ml_test_score is None


@pytest.fixture(scope="module")
def monitored(example_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example bundle beside two days of replayed traffic (drifted on day two)
    and the labels known for day one."""
    root = tmp_path_factory.mktemp("monitored")
    shutil.copytree(example_bundle, root / "dist" / example_bundle.name)
    replay = load_example_module("replay")
    frame, at = replay.traffic(2400, 7, "2026-04-20", 2, 24.0)
    replay.write_log(example_bundle, frame, at, root / "predictions")
    replay.write_labels(frame, root / "labels.parquet")
    return root


def _copy(monitored: Path, tmp_path: Path) -> Path:
    bundle = next((monitored / "dist").iterdir())
    copy = tmp_path / bundle.name
    shutil.copytree(bundle, copy)
    return copy


def _monitor(bundle: Path, data: Path, *extra: str) -> str:
    result = runner.invoke(app, ["monitor", str(bundle), "--data", str(data), *extra])
    assert result.exit_code in (0, 1), result.output  # 1: an alert fired
    return result.output


def _points(bundle: Path, trust) -> dict[str, dict]:
    score = mlhandoff.verify(bundle, **trust).ml_test_score
    assert score is not None
    return {r["id"]: r for r in score["tests"]}


def test_a_monitor_run_records_what_it_computed_and_earns_those_points(
    monitored: Path, tmp_path: Path, trust
) -> None:
    bundle = _copy(monitored, tmp_path)
    labels = ["--labels", str(monitored / "labels.parquet"), "--join-key", "transaction_id"]
    output = _monitor(bundle, monitored / "predictions", *labels)
    path = layout.monitor_record(bundle)
    assert "recorded for verify" in output
    record = json.loads(path.read_text())
    assert record["bundle_digest"] == mlhandoff.open_bundle(bundle).digest
    assert record["layout"] == "prediction log" and record["rows"] == 2400
    assert record["windows"] == 48 and record["rules_not_judged"] == []
    assert record["output_values"] == {"score": {"values": 2400, "nonfinite": 0}}
    perf = record["performance"]
    assert perf["labelled"] == pq.read_metadata(monitored / "labels.parquet").num_rows
    accepted = json.loads((bundle / layout.ACCEPTANCE_REPORT).read_text())["rows"][0]
    assert accepted["metric"] == "roc_auc" and accepted["bound"] == ">= 0.85"
    assert perf["offline"] == {
        "roc_auc": {"value": accepted["value"], "op": ">=", "threshold": 0.85}
    }
    assert record["reference_age_days"] > 0  # replayed weeks after the test split ends
    points = _points(bundle, trust)
    realised = perf["realised"]["roc_auc"]
    assert points["model-2"]["points"] == 1, points["model-2"]
    assert (
        f"roc_auc realised {realised:.4g} vs {accepted['value']:.4g}"
        in points["model-2"]["evidence"]
    )
    assert points["monitor-5"]["points"] == 1
    assert points["monitor-5"]["evidence"].endswith(
        "2,400 output values read, none NaN or infinite"
    )
    assert points["monitor-7"]["points"] == 1
    assert "recall (realised)" in points["monitor-7"]["evidence"]
    for test in ("model-4", "monitor-4"):  # the age is recorded, but nothing bounds it
        assert points[test]["points"] == 0 and not points[test]["checkable"]


def test_without_labels_only_the_estimate_is_compared_for_half_a_point(
    monitored: Path, tmp_path: Path, trust
) -> None:
    bundle = _copy(monitored, tmp_path)
    _monitor(bundle, monitored / "predictions", "--no-record")
    assert not layout.monitor_record(bundle).exists()
    points = _points(bundle, trust)
    assert points["model-2"]["points"] == 0
    assert "no monitor record for this bundle digest" in points["model-2"]["evidence"]
    assert points["monitor-7"]["points"] == 0.5  # the rules are specified, none was judged
    _monitor(bundle, monitored / "predictions")
    points = _points(bundle, trust)
    assert (
        points["model-2"]["points"] == 0.5 and "roc_auc estimated" in points["model-2"]["evidence"]
    )
    assert "recall (realised)" not in points["monitor-7"]["evidence"]
    assert points["monitor-7"]["points"] == 1  # the estimated roc_auc rule was judged


def test_nan_or_infinite_outputs_cost_the_stability_point(
    monitored: Path, tmp_path: Path, trust
) -> None:
    bundle = _copy(monitored, tmp_path)
    logs = tmp_path / "predictions"
    shutil.copytree(monitored / "predictions", logs)
    first = sorted(logs.rglob("*.parquet"))[0]
    table = pq.read_table(first)
    i = table.schema.get_field_index("output.score")
    score = table.column(i).to_pylist()
    score[:2] = [float("nan"), float("inf")]
    pq.write_table(table.set_column(i, "output.score", pa.array(score, pa.float64())), first)
    _monitor(bundle, logs)
    record = json.loads(layout.monitor_record(bundle).read_text())
    assert record["output_values"] == {"score": {"values": 2400, "nonfinite": 2}}
    row = _points(bundle, trust)["monitor-5"]
    assert row["points"] == 0
    assert row["evidence"] == "not earned: monitor record: NaN or infinite outputs: score 2"


def test_a_record_for_another_digest_earns_nothing(monitored: Path, tmp_path: Path, trust) -> None:
    bundle = _copy(monitored, tmp_path)
    _monitor(bundle, monitored / "predictions")
    path = layout.monitor_record(bundle)
    path.write_text(
        json.dumps({**json.loads(path.read_text()), "bundle_digest": "sha256:" + "0" * 64})
    )
    points = _points(bundle, trust)
    assert [points[t]["points"] for t in ("model-2", "monitor-5")] == [0, 0]
    assert points["monitor-7"]["points"] == 0.5


def test_a_table_run_validates_the_contract_itself(
    monitored: Path, example_dir: Path, tmp_path: Path, trust
) -> None:
    bundle = _copy(monitored, tmp_path)
    _monitor(bundle, example_dir / "work" / "test.parquet", "--window", "1d")
    record = json.loads(layout.monitor_record(bundle).read_text())
    assert record["layout"] == "table" and record["contract_validated"]
    assert record["output_values"] == {} and record["performance"] == {}
    points = _points(bundle, trust)
    rows = pq.read_metadata(example_dir / "work" / "test.parquet").num_rows
    assert points["monitor-2"]["evidence"].endswith(f"contract validated on {rows:,} rows")
    assert points["monitor-5"]["evidence"].endswith("the run read no floating-point output")


def test_the_record_holds_only_what_the_run_computed(example_bundle: Path) -> None:
    from mlhandoff.monitor.report import MonitorReport

    empty = MonitorReport(str(example_bundle), "nowhere", "1h", "reference")
    record = build_record(mlhandoff.open_bundle(example_bundle), empty)
    assert record["windows"] == 0 and record["rules_judged"] == [] and record["performance"] == {}
    assert record["output_values"] == {} and record["reference_age_days"] is None


def test_realised_performance_below_the_accepted_bound_earns_nothing(
    monitored: Path, tmp_path: Path, trust
) -> None:
    bundle = _copy(monitored, tmp_path)
    labels = ["--labels", str(monitored / "labels.parquet"), "--join-key", "transaction_id"]
    _monitor(bundle, monitored / "predictions", *labels)
    path = layout.monitor_record(bundle)
    record = json.loads(path.read_text())
    record["performance"]["realised"]["roc_auc"] = 0.6  # labels that disagree with acceptance
    path.write_text(json.dumps(record))
    row = _points(bundle, trust)["model-2"]
    assert row["points"] == 0  # the estimate does not stand in once labels have spoken
    assert "roc_auc misses the accepted bound" in row["evidence"]
    assert "realised performance is known: it decides" in row["evidence"]
