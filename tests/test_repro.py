"""The repro dry run: its pieces here; the full clean-venv run is opt-in (slow, needs PyPI).

Set MLHANDOFF_FULL_REPRO=1 to run it (about 1-3 minutes with a warm pip cache); `make demo`
runs it on the example every time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mlhandoff
from mlhandoff.bundle import layout
from mlhandoff.verify import repro as repro_mod
from test_evaluate_support import make_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(
        tmp_path_factory.mktemp("repro"),
        "repro-me",
        acceptance={
            "criteria": [{"metric": "roc_auc", "threshold": 0.6}],
            "bootstrap": {"resamples": 50},
        },
    )


def _line(bundle: Path):
    return {r.id: r for r in mlhandoff.verify(bundle).results}["repro_validated"]


def test_record_lives_beside_the_bundle_and_verify_reads_it(bundle: Path) -> None:
    record = layout.repro_record(bundle)
    assert record.parent == bundle.parent and record.name == f"{bundle.name}.repro.json"
    assert _line(bundle).status == "skipped"
    digest = mlhandoff.open_bundle(bundle).digest
    try:
        record.write_text(
            json.dumps({"bundle_digest": digest, "ok": True, "wall_s": 42.0, "frictions": []})
        )
        line = _line(bundle)
        assert line.status == "pass" and "42s" in line.detail
        record.write_text(
            json.dumps(
                {
                    "bundle_digest": digest,
                    "ok": False,
                    "wall_s": 9,
                    "frictions": ["package failed to install: nope==1"],
                }
            )
        )
        line = _line(bundle)
        assert line.status == "fail" and "nope==1" in line.detail
        record.write_text(json.dumps({"bundle_digest": "sha256:other", "ok": True}))
        assert _line(bundle).status == "skipped"
    finally:
        record.unlink(missing_ok=True)


def test_requirements_pin_everything_but_mlhandoff_itself(bundle: Path) -> None:
    reqs = repro_mod._requirements(mlhandoff.open_bundle(bundle))
    assert reqs and all("==" in pin and not hashes for pin, hashes in reqs)
    assert not any(pin.lower().startswith("mlhandoff==") for pin, _ in reqs)
    tree = repro_mod.source_tree()
    assert tree is not None and (tree / "src" / "mlhandoff").is_dir()  # tests run from a checkout


def test_friction_is_recorded_not_raised(bundle: Path, tmp_path: Path) -> None:
    result = repro_mod.repro(bundle, python=str(tmp_path / "no-python"), workdir=tmp_path)
    assert not result.ok and result.bundle_digest == mlhandoff.open_bundle(bundle).digest
    assert "could not create a virtual environment with python -m venv" in result.frictions
    assert result.steps[0].name == "create venv" and not result.steps[0].ok
    try:
        line = _line(bundle)
        assert line.status == "fail" and "could not create a virtual environment" in line.detail
    finally:
        layout.repro_record(bundle).unlink(missing_ok=True)
    assert not list(tmp_path.glob("mlhandoff-repro-*"))  # work files cleaned up


def test_a_retrain_that_writes_its_inputs_never_touches_the_originals(tmp_path: Path) -> None:
    """Training scripts often write their splits back: the dry run works on copies."""
    src = tmp_path / "writes-inputs-1.0.0-src"  # make_bundle's spec directory
    (src / "data").mkdir(parents=True)
    (src / "data" / "train.csv").write_text("x,y\n1,0\n")
    (src / "train.sh").write_text("echo overwritten > data/train.csv\necho model > model.skops\n")
    bundle = make_bundle(
        tmp_path,
        "writes-inputs",
        training={
            "code_path": "train.sh",
            "command": "sh train.sh",
            "data": [{"path": "data/train.csv", "role": "train"}],
        },
    )
    opened = mlhandoff.open_bundle(bundle)
    result = repro_mod.ReproResult(bundle=str(bundle), bundle_digest=opened.digest)
    runner = repro_mod._Runner(result, lambda _: None)
    work = tmp_path / "work"
    work.mkdir()
    repro_mod._retrain(runner, opened, work / "venv", work, dict(os.environ), src)
    assert [s.name for s in result.steps] == ["retrain (recorded command)"] and result.steps[0].ok
    assert (work / "retrain" / "data" / "train.csv").read_text() == "overwritten\n"
    assert (src / "data" / "train.csv").read_text() == "x,y\n1,0\n"  # the original, untouched


@pytest.mark.skipif(
    os.environ.get("MLHANDOFF_FULL_REPRO") != "1",
    reason="full clean-venv repro is slow: set MLHANDOFF_FULL_REPRO=1 (make demo runs it)",
)
def test_full_repro_in_a_fresh_venv(bundle: Path) -> None:  # pragma: no cover - opt-in
    try:
        result = repro_mod.repro(bundle)
        assert result.ok, result.frictions
        assert result.metrics and all(m["ok"] for m in result.metrics)
        assert _line(bundle).status == "pass"
    finally:
        layout.repro_record(bundle).unlink(missing_ok=True)
