"""Bundle format versions: format 2 keeps pack's findings out of the spec; format 1 still reads."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

import mlhandoff
from mlhandoff.bundle import FORMAT_VERSION, EnvironmentMismatchWarning, layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.errors import BundleError

FORMAT_1 = Path(__file__).parent / "fixtures" / "bundle_format1"


@pytest.fixture
def format_1(tmp_path: Path) -> Path:
    copy = tmp_path / FORMAT_1.name
    shutil.copytree(FORMAT_1, copy)
    return copy


def test_format_1_bundle_opens_with_its_record_split_out(format_1: Path) -> None:
    assert FORMAT_VERSION == 2
    bundle = mlhandoff.open_bundle(format_1)
    assert bundle.manifest["format_version"] == 1
    assert bundle.record.model.path == "model/model.skops"
    assert bundle.record.model.flavor == "sklearn"
    assert bundle.record.training.code_path == "code/train.py"
    assert [d.role for d in bundle.record.training.data] == ["train", "test"]
    assert bundle.record.golden_rows == 20
    assert bundle.report(layout.LEAKAGE_REPORT)["checked"]  # kept inside its spec in format 1


def test_format_1_bundle_verifies_and_predicts(format_1: Path) -> None:
    with warnings.catch_warnings():  # the fixture's lock is from the machine that packed it
        warnings.simplefilter("ignore", EnvironmentMismatchWarning)
        report = mlhandoff.verify(format_1)
    by_id = {r.id: r for r in report.results}
    for check in ("integrity", "spec", "golden_contract", "golden_replay", "acceptance_measured"):
        assert by_id[check].status == "pass", by_id[check]
    assert by_id["leakage"].status == "pass" and "train vs test.parquet" in by_id["leakage"].detail


def test_a_newer_format_is_refused_with_the_upgrade_command(format_1: Path) -> None:
    manifest = (format_1 / "MANIFEST.json").read_text()
    (format_1 / "MANIFEST.json").write_text(
        manifest.replace('"format_version": 1', '"format_version": 3')
    )
    with pytest.raises(BundleError, match="pip install -U mlhandoff"):
        mlhandoff.open_bundle(format_1)


def test_a_bundle_is_only_made_by_open_bundle(format_1: Path) -> None:
    opened = mlhandoff.open_bundle(format_1)
    with pytest.raises(TypeError, match="open_bundle"):
        Bundle(opened.root, opened.manifest, opened.spec, opened.record, opened.integrity)
