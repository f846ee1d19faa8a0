from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import mlhandoff
from mlhandoff.bundle.manifest import MANIFEST_NAME, build_manifest, read_manifest, write_manifest
from mlhandoff.errors import (
    BundleError,
    BundleExistsError,
    ContractViolation,
    InputError,
    IntegrityError,
    ModelLoadError,
    PredictError,
    UnsafeModelError,
)
from signers import sign_example


@pytest.fixture(scope="module")
def bundle(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    bundle = mlhandoff.pack(spec=example_dir / "handoff.yaml", out=out).path
    sign_example(bundle, example_dir)
    return bundle


def _spec_copy(example_dir: Path, tmp_path: Path, edit=None, name: str = "handoff.yaml") -> Path:
    """A copy of the example spec in example_dir, optionally edited as a dict."""
    data = yaml.safe_load((example_dir / "handoff.yaml").read_text())
    if edit:
        edit(data)
    path = example_dir / f"{tmp_path.name}-{name}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _copy_bundle(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / bundle.name
    shutil.copytree(bundle, target)
    return target


def test_bundle_layout_and_manifest(bundle: Path) -> None:
    manifest = read_manifest(bundle)
    files = set(manifest["files"])
    assert {
        "handoff.yaml",
        "model/model.skops",
        "code/train.py",
        "env/requirements.txt",
        "env/environment.json",
        "data/golden_inputs.parquet",
        "data/golden_outputs.parquet",
        "docs/README.md",
        "docs/MODEL_CARD.md",
        "docs/openapi.json",
    } <= files
    assert manifest["format_version"] == 2
    for rel, entry in manifest["files"].items():
        data = (bundle / rel).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    # the bundle digest is the sha256 of sha256sum-style lines, sorted by path
    lines = "".join(f"{manifest['files'][p]['sha256']}  {p}\n" for p in sorted(files))
    assert manifest["bundle_digest"] == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def test_pack_record_holds_provenance_and_the_frozen_spec_is_as_written(
    bundle: Path, example_dir: Path
) -> None:
    written = mlhandoff.load_spec(example_dir / "handoff.yaml")
    frozen = mlhandoff.load_spec(bundle / "handoff.yaml")
    assert frozen == written  # what pack computed lives in reports/, never in the spec
    record = mlhandoff.open_bundle(bundle).record
    assert record.model.path == "model/model.skops" and record.model.flavor == "sklearn"
    assert record.training.code_path == "code/train.py"
    train_digest = hashlib.sha256((example_dir / "work" / "train.parquet").read_bytes()).hexdigest()
    assert record.training.data[0].sha256 == train_digest
    assert record.golden_rows == frozen.golden.rows
    assert (
        json.loads((bundle / "reports" / "pack.json").read_text())["model"]["flavor"] == "sklearn"
    )
    env = json.loads((bundle / "env" / "environment.json").read_text())
    assert env["seed"] == 42 and env["python"]
    import sklearn

    assert env["packages"]["scikit-learn"] == sklearn.__version__
    assert (
        f"scikit-learn=={sklearn.__version__}" in (bundle / "env" / "requirements.txt").read_text()
    )


def test_golden_set_matches_the_model(bundle: Path, example_model) -> None:
    inputs = pq.read_table(bundle / "data" / "golden_inputs.parquet")
    outputs = pq.read_table(bundle / "data" / "golden_outputs.parquet")
    assert inputs.num_rows == outputs.num_rows == 200
    assert outputs.column_names == ["score", "label"]
    expected = example_model.predict_proba(inputs.to_pandas())[:, 1]
    assert outputs.column("score").to_pylist() == pytest.approx(expected.tolist(), rel=1e-12)


def test_rendered_docs_state_the_spec(bundle: Path) -> None:
    readme = (bundle / "docs" / "README.md").read_text()
    for expected in (
        "Dana Scientist",
        "pagerduty: risk-ml-primary",
        "`amount_eur` | float | EUR | [0.01, 5000]",
        "roc_auc | >= 0.85",
        "Roll back when",
        "pip install -r env/requirements.txt",
        "✅ pass",
    ):
        assert expected in readme, expected
    assert "TODO" not in readme
    assert "| 422 | `contract_violation` |" in readme and "Its response (the packed model" in readme
    openapi = json.loads((bundle / "docs" / "openapi.json").read_text())
    assert openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    card = (bundle / "docs" / "MODEL_CARD.md").read_text()
    assert (
        "Rank card authorisations by fraud risk" in card and "per-country recall guardrail" in card
    )


def test_verify_passes_on_a_fresh_bundle(bundle: Path, example_dir: Path) -> None:
    trust = sign_example(bundle, example_dir)  # a second signature and set of sign-offs: fine
    report = mlhandoff.verify(bundle, **trust)
    assert report.ok, [r for r in report.results if r.failed]
    ids = [r.id for r in report.results]
    assert ids[:6] == [
        "integrity",
        "spec",
        "signature",
        "signoffs",
        "golden_contract",
        "golden_replay",
    ]
    assert {
        "artifacts",
        "repro",
        "contracts",
        "acceptance",
        "monitoring",
        "rollback_oncall",
        "model_card_privacy",
        "signoffs",
    } <= set(ids)


def test_open_bundle_predicts_like_the_model(bundle: Path, example_model) -> None:
    opened = mlhandoff.open_bundle(bundle)
    inputs, expected = opened.golden()
    assert opened.predict(inputs, compiled=False).equals(expected)
    # The compiled form (what serves by default) within the golden tolerance, same labels.
    compiled = opened.predict(inputs)
    assert compiled.column("label").equals(expected.column("label"))
    np.testing.assert_allclose(
        compiled.column("score").to_numpy(),
        expected.column("score").to_numpy(),
        rtol=opened.spec.golden.rtol,
        atol=opened.spec.golden.atol,
    )


def test_every_file_tampered_is_named(bundle: Path, tmp_path: Path) -> None:
    files = list(read_manifest(bundle)["files"])
    for i, rel in enumerate(files):
        copy = _copy_bundle(bundle, tmp_path / str(i))
        path = copy / rel
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        report = mlhandoff.verify(copy)
        integrity = report.results[0]
        assert integrity.status == "fail" and f"modified: {rel}" in integrity.detail, rel
        assert not report.ok
        assert {r.status for r in report.results[1:]} == {"skipped"}
        with pytest.raises(IntegrityError, match=rel):
            mlhandoff.open_bundle(copy)


def test_missing_and_extra_files_are_named(bundle: Path, tmp_path: Path) -> None:
    copy = _copy_bundle(bundle, tmp_path)
    (copy / "docs" / "MODEL_CARD.md").unlink()
    (copy / "model" / "backdoor.py").write_text("print('hi')")
    detail = mlhandoff.verify(copy).results[0].detail
    assert "missing: docs/MODEL_CARD.md" in detail and "extra: model/backdoor.py" in detail


def test_edited_manifest_digest_is_caught(bundle: Path, tmp_path: Path) -> None:
    copy = _copy_bundle(bundle, tmp_path)
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    manifest["bundle_digest"] = "sha256:" + "0" * 64
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert "bundle_digest does not match" in mlhandoff.verify(copy).results[0].detail


def test_not_a_bundle(tmp_path: Path) -> None:
    report = mlhandoff.verify(tmp_path)
    assert not report.ok and "MANIFEST.json: missing" in report.results[0].detail
    with pytest.raises(BundleError):
        mlhandoff.open_bundle(tmp_path / "nowhere")


def test_golden_replay_detects_changed_outputs(bundle: Path, tmp_path: Path) -> None:
    copy = _copy_bundle(bundle, tmp_path)
    outputs = pq.read_table(copy / "data" / "golden_outputs.parquet")
    scores = outputs.column("score").to_pylist()
    scores[3] += 1e-3
    pq.write_table(
        outputs.set_column(0, "score", pa.array(scores)), copy / "data" / "golden_outputs.parquet"
    )
    manifest = read_manifest(copy)
    write_manifest(
        copy,
        build_manifest(
            copy, {k: manifest[k] for k in ("name", "version", "created_at", "created_by")}
        ),
    )
    replay = {r.id: r for r in mlhandoff.verify(copy).results}["golden_replay"]
    assert replay.status == "fail" and "score: 1 of 200 rows differ (row 3" in replay.detail


def test_pack_in_memory_model_from_python(example_dir: Path, example_model, tmp_path: Path) -> None:
    sample = pd.read_parquet(example_dir / "work" / "sample.parquet")
    spec = _spec_copy(example_dir, tmp_path, lambda d: d["model"].pop("flavor"))
    result = mlhandoff.pack(example_model, sample=sample, spec=spec, out=tmp_path / "dist")
    assert (result.path / "model" / "model.skops").exists()
    report = mlhandoff.verify(result.path, **sign_example(result.path, example_dir))
    assert report.ok, [r for r in report.results if r.failed]
    # the recorded command is not shown to make an object handed over in memory: flagged
    assert mlhandoff.open_bundle(result.path).record.model.from_memory
    repro = {r.id: r for r in report.results}["repro"]
    assert repro.status == "warn" and "packed from memory" in repro.detail
    assert "repro --retrain" in repro.detail


def test_pack_refuses_existing_bundle_and_force_replaces(bundle: Path, example_dir: Path) -> None:
    with pytest.raises(BundleExistsError, match="already exists"):
        mlhandoff.pack(spec=example_dir / "handoff.yaml", out=bundle.parent)
    before = read_manifest(bundle)["bundle_digest"]
    result = mlhandoff.pack(spec=example_dir / "handoff.yaml", out=bundle.parent, force=True)
    assert result.path == bundle and not (bundle / "signatures").exists()  # a new bundle
    assert mlhandoff.verify(bundle, **sign_example(bundle, example_dir)).ok
    assert (
        read_manifest(bundle)["bundle_digest"] == before
    )  # packing the same inputs is reproducible
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]


def _assert_no_partial(out: Path) -> None:
    assert not out.exists() or list(out.iterdir()) == []


def test_sample_missing_a_contract_field(example_dir: Path, tmp_path: Path) -> None:
    sample = pd.read_parquet(example_dir / "work" / "sample.parquet").drop(columns=["country"])
    with pytest.raises(ContractViolation, match="missing: country"):
        mlhandoff.pack(spec=example_dir / "handoff.yaml", sample=sample, out=tmp_path / "dist")
    _assert_no_partial(tmp_path / "dist")


def test_model_features_not_in_the_contract(example_dir: Path, tmp_path: Path) -> None:
    def drop_field(d: dict) -> None:
        del d["data_contract"]["fields"]["device_changed"]
        for example in d["api"]["examples"]:
            example.pop("device_changed")

    spec = _spec_copy(example_dir, tmp_path, drop_field)
    with pytest.raises((InputError, PredictError), match="device_changed"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    _assert_no_partial(tmp_path / "dist")


def test_missing_model_file(example_dir: Path, tmp_path: Path) -> None:
    spec = _spec_copy(example_dir, tmp_path, lambda d: d["model"].update(path="work/nope.skops"))
    with pytest.raises(InputError, match=r"model.path: .*nope.skops not found"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    _assert_no_partial(tmp_path / "dist")


def test_truncated_model_file(example_dir: Path, tmp_path: Path) -> None:
    truncated = example_dir / "work" / f"{tmp_path.name}-truncated.skops"
    truncated.write_bytes((example_dir / "work" / "model.skops").read_bytes()[:5000])
    spec = _spec_copy(
        example_dir, tmp_path, lambda d: d["model"].update(path=f"work/{truncated.name}")
    )
    with pytest.raises(ModelLoadError):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    _assert_no_partial(tmp_path / "dist")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(example_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = example_dir / "work" / f"{tmp_path.name}-evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    spec = _spec_copy(
        example_dir, tmp_path, lambda d: d["model"].update(path=f"work/{evil.name}", flavor=None)
    )
    with pytest.raises(UnsafeModelError, match="system"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    assert not marker.exists()
    _assert_no_partial(tmp_path / "dist")


def test_no_sample_anywhere(example_dir: Path, tmp_path: Path) -> None:
    spec = _spec_copy(example_dir, tmp_path, lambda d: d["golden"].pop("sample"))
    with pytest.raises(InputError, match="no sample data"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "train.py",
            "KEY = 'AKIAABCDEFGHIJKLMNOP'\n",
            r"code/train\.py:1: looks like an AWS access key id",
        ),
        (
            "train.py",
            "x = 1\npassword = 'hunter2hunter2'\n",
            r"code/train\.py:2: looks like a password assignment",
        ),
        (
            "deploy.pem",
            "-----BEGIN RSA PRIVATE KEY-----\n",
            r"deploy\.pem: a file named like a secret",
        ),
    ],
)
def test_secrets_in_training_code_are_refused(
    example_dir: Path, tmp_path: Path, name: str, content: str, expected: str
) -> None:
    code = example_dir / f"{tmp_path.name}-code"
    code.mkdir()
    (code / "train.py").write_text((example_dir / "train.py").read_text())
    (code / name).write_text(content)
    spec = _spec_copy(example_dir, tmp_path, lambda d: d["training"].update(code_path=code.name))
    with pytest.raises(InputError, match=expected):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    _assert_no_partial(tmp_path / "dist")


def test_symlinked_file_fails_integrity(bundle: Path, tmp_path: Path) -> None:
    copy = _copy_bundle(bundle, tmp_path)
    target = copy / "docs" / "MODEL_CARD.md"
    outside = tmp_path / "outside.md"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    integrity = mlhandoff.verify(copy).results[0]
    assert (
        integrity.status == "fail"
        and "not a regular file (link, FIFO or device): docs/MODEL_CARD.md" in integrity.detail
    )


def _rewrite_record(bundle: Path, tmp_path: Path, **model: str) -> Path:
    """A copy whose pack record is changed and whose manifest is rewritten to match."""
    copy = _copy_bundle(bundle, tmp_path)
    record = json.loads((copy / "reports" / "pack.json").read_text())
    record["model"].update(model)
    (copy / "reports" / "pack.json").write_text(json.dumps(record))
    manifest = read_manifest(copy)
    meta = {k: manifest[k] for k in ("name", "version", "created_at", "created_by")}
    write_manifest(copy, build_manifest(copy, meta))
    return copy


def test_model_path_outside_the_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    shutil.copy(bundle / "model" / "model.skops", tmp_path / "evil.skops")
    copy = _rewrite_record(bundle, tmp_path, path="../evil.skops")
    with pytest.raises(BundleError, match="outside the bundle"):
        mlhandoff.open_bundle(copy)


def test_verify_refuses_a_model_path_outside_the_bundle(bundle: Path, tmp_path: Path) -> None:
    """verify opens bundles the one way serve does: the same containment refusal."""
    marker = tmp_path / "loaded"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Evil(marker)))
    copy = _rewrite_record(bundle, tmp_path, path="../evil.pkl")
    report = mlhandoff.verify(copy)
    by_id = {r.id: r for r in report.results}
    assert by_id["integrity"].status == "pass"
    assert by_id["spec"].status == "fail" and "outside the bundle" in by_id["spec"].detail
    assert "golden_replay" not in by_id and not report.ok
    assert not marker.exists()


def test_fields_listed_under_privacy_are_pii_everywhere(example_dir: Path) -> None:
    spec = mlhandoff.load_spec(example_dir / "handoff.yaml")
    assert spec.data_contract.fields["distance_from_home_km"].pii
    text = (example_dir / "handoff.yaml").read_text().replace("      pii: true\n", "")
    reparsed = mlhandoff.parse_spec(text)
    assert reparsed.data_contract.fields["distance_from_home_km"].pii  # listed under privacy only
    report = mlhandoff.CompiledContract(reparsed.data_contract).validate(
        pa.table({"distance_from_home_km": [-31337.5]}), allow_extra=True
    )
    assert report.violations and all("31337" not in v.message for v in report.violations)


def test_bundle_predict_refuses_data_that_breaks_the_contract(bundle: Path) -> None:
    """The library validates like the server; an explicit opt-out scores anyway."""
    opened = mlhandoff.open_bundle(bundle)
    inputs, _ = opened.golden()
    frame = inputs.to_pandas()
    frame.loc[0, "amount_eur"] = -5.0  # the contract says min 0
    with pytest.raises(ContractViolation, match="amount_eur"):
        opened.predict(frame)
    assert opened.predict(frame, validate=False).num_rows == len(frame)
    labelled = frame.iloc[1:].assign(is_fraud=0)  # extra columns (a label) are ignored
    assert opened.predict(labelled).num_rows == len(frame) - 1


def test_the_card_line_passes_only_when_the_card_has_no_todo(
    bundle: Path, example_dir: Path, tmp_path: Path
) -> None:
    """Every field the model card renders is on the checklist: a TODO in one fails the line."""
    lines = {r.id: r for r in mlhandoff.verify(bundle).results}
    assert lines["model_card_privacy"].status == "pass"
    assert "TODO" not in (bundle / "docs" / "MODEL_CARD.md").read_text()
    for field in ("ethical_considerations", "evaluation_data"):
        spec = _spec_copy(
            example_dir, tmp_path, lambda d, f=field: d["model_card"].pop(f), name=f"{field}.yaml"
        )
        packed = mlhandoff.pack(spec=spec, out=tmp_path / field).path
        line = {r.id: r for r in mlhandoff.verify(packed).results}["model_card_privacy"]
        assert line.status == "missing" and f"model_card.{field}" in line.detail
        assert "**TODO**" in (packed / "docs" / "MODEL_CARD.md").read_text()


def test_an_extra_package_that_is_not_installed_is_refused(
    example_dir: Path, tmp_path: Path
) -> None:
    """A package the lock cannot pin would be missing on a clean machine: say so at pack."""
    spec = _spec_copy(
        example_dir,
        tmp_path,
        lambda d: d.setdefault("environment", {}).update(packages=["PyYAML", "no-such-dist-xyz"]),
    )
    with pytest.raises(InputError, match=r"environment.packages: no-such-dist-xyz not installed"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    _assert_no_partial(tmp_path / "dist")


def test_pack_reads_a_json_lines_sample_as_validate_does(example_dir: Path, tmp_path: Path) -> None:
    """One reader: times written with 'Z' in JSON-lines are UTC timestamps for pack too."""
    frame = pd.read_parquet(example_dir / "work" / "sample.parquet").head(50)
    sample = tmp_path / "sample.jsonl"
    frame.to_json(sample, orient="records", lines=True, date_format="iso", date_unit="s")
    assert sample.read_text().splitlines()[0].count("Z") >= 1
    spec = mlhandoff.load_spec(example_dir / "handoff.yaml")
    assert mlhandoff.CompiledContract(spec.data_contract).read(sample, allow_extra=True)[1].ok
    result = mlhandoff.pack(spec=example_dir / "handoff.yaml", sample=sample, out=tmp_path / "dist")
    assert mlhandoff.verify(result.path).results[0].status == "pass"
