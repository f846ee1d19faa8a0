"""The ML Test Score from verify's own results: every point names the check behind it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlhandoff
from mlhandoff.bundle import layout
from mlhandoff.capabilities.ml_test_score import SECTIONS, TESTS
from mlhandoff.cli import app


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
    for row in score["tests"]:
        if row["points"]:
            title, status = row["evidence"].rsplit(": ", 1)
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
