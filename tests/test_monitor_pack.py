"""Pack builds the reference profile (and the monitoring docs); verify recounts and checks them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

import mlhandoff
from mlhandoff.bundle.manifest import build_manifest, read_manifest, write_manifest
from mlhandoff.monitor.profile import Profile, ProfileCounter
from mlhandoff.monitor.reference import load_reference
from mlhandoff.spec import load_spec
from mlhandoff.spec.models import Acceptance


def _resign(bundle: Path) -> None:
    meta = {
        k: v
        for k, v in read_manifest(bundle).items()
        if k in ("name", "version", "created_at", "created_by")
    }
    write_manifest(bundle, build_manifest(bundle, meta))


def test_the_reference_is_the_evaluation_sample_with_the_models_outputs(
    example_bundle: Path,
) -> None:
    bundle = mlhandoff.open_bundle(example_bundle)
    profile = load_reference(bundle)
    sample = pq.read_table(example_bundle / "data" / "eval_sample.parquet")
    assert profile.rows == sample.num_rows
    assert profile.source.startswith("evaluation sample (data/eval_sample.parquet")
    assert set(profile.inputs) == set(bundle.spec.data_contract.fields)
    assert set(profile.outputs) == {"score", "label"}
    amount = profile.inputs["amount_eur"]
    values = sample.column("amount_eur").to_numpy()
    assert amount.edges is not None
    np.testing.assert_allclose(amount.edges, np.quantile(values, np.linspace(0, 1, 11)))
    assert profile.inputs["country"].categories == tuple(
        bundle.spec.data_contract.fields["country"].domain or ()
    )
    label = profile.outputs["label"]
    assert label.categories == ("0", "1")
    outputs = bundle.predict(sample.select(list(bundle.spec.data_contract.fields)))
    positives = int(np.sum(outputs.column("label").to_numpy()))
    assert label.counts.tolist() == [0, sample.num_rows - positives, positives, 0]
    distance = profile.inputs["distance_from_home_km"]
    assert distance.nulls == sample.column("distance_from_home_km").null_count


def test_counting_the_reference_rows_again_gives_the_reference(example_bundle: Path) -> None:
    bundle = mlhandoff.open_bundle(example_bundle)
    profile = load_reference(bundle)
    sample = pq.read_table(example_bundle / "data" / "eval_sample.parquet")
    outputs = bundle.predict(sample.select(list(bundle.spec.data_contract.fields)))
    again = ProfileCounter(profile).count(sample, outputs)[0]
    for name, field in profile.inputs.items():
        assert again.inputs[name].counts.tolist() == field.counts.tolist(), name


def test_verify_recounts_the_reference(example_bundle: Path) -> None:
    checks = {r.id: r for r in mlhandoff.verify(example_bundle).results}
    assert checks["reference_profile"].status == "pass"
    assert "recounted identical" in checks["reference_profile"].detail
    assert checks["monitoring"].status == "pass", checks["monitoring"].detail


def test_verify_fails_when_the_reference_was_edited(example_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, copy)
    path = copy / "data" / "reference_profile.json"
    data = json.loads(path.read_text())
    counts = data["inputs"]["amount_eur"]["counts"]
    counts[2], counts[3] = counts[2] + 5, counts[3] - 5
    path.write_text(json.dumps(data))
    _resign(copy)
    check = {r.id: r for r in mlhandoff.verify(copy).results}["reference_profile"]
    assert check.status == "fail"
    assert check.detail == "recounted reference differs in input amount_eur"


def test_a_bundle_without_a_profile_says_to_repack(example_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, copy)
    (copy / "data" / "reference_profile.json").unlink()
    _resign(copy)
    checks = {r.id: r for r in mlhandoff.verify(copy).results}
    assert checks["reference_profile"].status == "missing"
    assert "re-pack the bundle to monitor it" in checks["reference_profile"].detail
    assert checks["monitoring"].status == "missing"
    assert "no data/reference_profile.json" in checks["monitoring"].detail


def test_without_evaluation_data_the_reference_is_the_golden_sample(
    example_dir: Path, tmp_path: Path
) -> None:
    spec = load_spec(example_dir / "handoff.yaml")
    spec.acceptance = Acceptance()  # no acceptance.data: nothing measured, no eval sample
    bundle = mlhandoff.pack(spec=spec, base_dir=example_dir, out=tmp_path / "dist").path
    profile = Profile.from_json(json.loads((bundle / "data/reference_profile.json").read_text()))
    sample = pq.read_metadata(example_dir / "work" / "sample.parquet")
    assert profile.source == f"golden.sample work/sample.parquet ({sample.num_rows} rows)"
    assert profile.rows == sample.num_rows
    check = {r.id: r for r in mlhandoff.verify(bundle).results}["reference_profile"]
    assert check.status == "pass" and "not recounted" in check.detail
