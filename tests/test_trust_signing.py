"""Signing bundles in the OpenSSF model-signing format: mlhandoff and the real model_signing CLI
verify each other's signatures; bad signatures are named for what is wrong with them."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import mlhandoff
from mlhandoff.bundle.manifest import build_manifest, read_manifest, write_manifest
from mlhandoff.bundle.signing import TrustAnchors, generate_key, sign_bundle
from mlhandoff.cli import app
from mlhandoff.errors import InputError, IntegrityError, SignatureError

MODEL_SIGNING = str(Path(sys.executable).parent / "model_signing")
SIG = "signatures/model.sig"


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    for name in ("eli", "mallory"):
        generate_key(root / f"{name}.key")
    return root


@pytest.fixture()
def copy(example_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, target, ignore=shutil.ignore_patterns("signatures"))
    return target


def _line(bundle: Path, check: str = "signature", **anchors) -> mlhandoff.CheckResult:
    return {r.id: r for r in mlhandoff.verify(bundle, **anchors).results}[check]


def _model_signing(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MODEL_SIGNING, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_signed_by_mlhandoff_verifies_with_the_model_signing_cli(copy: Path, keys: Path) -> None:
    result = _run("sign", copy, "--key", keys / "eli.key")
    assert result.exit_code == 0, result.output
    done = _model_signing(
        "verify", "key", copy, "--signature", copy / SIG,
        "--public_key", keys / "eli.pub", "--ignore-paths", copy / "signatures",
    )  # fmt: skip
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done
    # and not with another key: the CLI really checks
    other = _model_signing(
        "verify", "key", copy, "--signature", copy / SIG,
        "--public_key", keys / "mallory.pub", "--ignore-paths", copy / "signatures",
    )  # fmt: skip
    assert other.returncode != 0
    line = _line(copy, public_keys=[keys / "eli.pub"])
    assert line.status == "pass" and "signed by eli.pub" in line.detail


def test_signed_by_the_model_signing_cli_verifies_with_mlhandoff(copy: Path, keys: Path) -> None:
    (copy / "signatures").mkdir()
    done = _model_signing(
        "sign", "key", copy, "--private_key", keys / "eli.key",
        "--signature", copy / SIG, "--ignore-paths", copy / "signatures",
    )  # fmt: skip
    assert done.returncode == 0, done
    result = _run("verify", copy, "--public-key", keys / "eli.pub", "--json")
    checks = {c["id"]: c for c in json.loads(result.output)["checks"]}
    assert checks["signature"]["status"] == "pass", checks["signature"]
    files = len(read_manifest(copy)["files"]) + 1  # and MANIFEST.json itself
    assert checks["signature"]["detail"].startswith(f"{files} files signed by eli.pub")


def test_a_signature_that_leaves_files_out_does_not_vouch_for_the_bundle(
    copy: Path, keys: Path
) -> None:
    (copy / "signatures").mkdir()
    done = _model_signing(
        "sign", "key", copy, "--private_key", keys / "eli.key", "--signature", copy / SIG,
        "--ignore-paths", copy / "signatures", "--ignore-paths", copy / "model",
    )  # fmt: skip
    assert done.returncode == 0, done
    line = _line(copy, public_keys=[keys / "eli.pub"])
    assert line.status == "fail"
    assert "not covered by the signature: model/" in line.detail and "model.skops" in line.detail


def test_a_signature_over_another_bundle_is_refused(
    copy: Path, keys: Path, example_dir: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load((example_dir / "handoff.yaml").read_text())
    data["version"] = "1.0.1"
    spec = example_dir / f"{tmp_path.name}-other.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    other = mlhandoff.pack(spec=spec, out=tmp_path / "other").path
    sign_bundle(other, keys / "eli.key")
    (copy / "signatures").mkdir()
    shutil.copy(other / SIG, copy / SIG)
    line = _line(copy, public_keys=[keys / "eli.pub"])
    assert line.status == "fail" and "no longer matches this bundle" in line.detail
    other_digest = read_manifest(other)["bundle_digest"]
    assert f"it signs bundle digest {other_digest}" in line.detail
    assert "changed since signing: MANIFEST.json, docs/README.md" in line.detail


def test_a_key_not_in_the_keyring_is_refused(copy: Path, keys: Path, tmp_path: Path) -> None:
    sign_bundle(copy, keys / "mallory.key")
    line = _line(copy, public_keys=[keys / "eli.pub"])
    assert line.status == "fail"
    assert "signed by a key that is not in the --public-key given" in line.detail
    ring = tmp_path / "ring"
    ring.mkdir()
    shutil.copy(keys / "eli.pub", ring / "eli.pub")
    line = _line(copy, keyring=ring)
    assert line.status == "fail" and "not in the --keyring given" in line.detail


def test_a_truncated_signature_file_is_named(copy: Path, keys: Path) -> None:
    sign_bundle(copy, keys / "eli.key")
    data = (copy / SIG).read_bytes()
    (copy / SIG).write_bytes(data[: len(data) // 2])
    line = _line(copy, public_keys=[keys / "eli.pub"])
    assert line.status == "fail"
    assert line.detail.startswith(f"{SIG}: not a readable signature (truncated or corrupt")


def test_a_forged_signature_does_not_verify(copy: Path, keys: Path) -> None:
    """The statement edited after signing (a digest swapped in): the signature bytes fail."""
    sign_bundle(copy, keys / "eli.key")
    bundle = json.loads((copy / SIG).read_text())
    import base64

    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (copy / SIG).write_text(json.dumps(bundle))
    line = _line(copy, public_keys=[keys / "eli.pub"])
    assert line.status == "fail" and "does not verify with eli.pub" in line.detail


def test_signed_then_tampered_names_the_file(copy: Path, keys: Path) -> None:
    sign_bundle(copy, keys / "eli.key")
    model = copy / "model" / "model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))
    # the manifest left alone: integrity names the file, nothing else runs
    report = mlhandoff.verify(copy, public_keys=[keys / "eli.pub"])
    assert "modified: model/model.skops" in report.results[0].detail
    # the manifest rewritten to match (the model swap that used to verify as intact)
    manifest = read_manifest(copy)
    meta = {k: manifest[k] for k in ("name", "version", "created_at", "created_by")}
    write_manifest(copy, build_manifest(copy, meta))
    report = mlhandoff.verify(copy, public_keys=[keys / "eli.pub"])
    assert report.results[0].status == "pass" and not report.ok
    line = {r.id: r for r in report.results}["signature"]
    assert line.status == "fail" and "the signature no longer matches this bundle" in line.detail
    assert "changed since signing: MANIFEST.json, model/model.skops" in line.detail
    # a bundle that does not match its manifest is never signed
    model.write_bytes(b"other")
    with pytest.raises(IntegrityError, match="refusing to sign"):
        sign_bundle(copy, keys / "eli.key")


def test_require_signature(copy: Path, keys: Path) -> None:
    """The example requires a signature (security.require_signature)."""
    line = _line(copy)
    assert line.status == "missing" and "security.require_signature" in line.detail
    sign_bundle(copy, keys / "mallory.key")
    line = _line(copy)  # checked with the bundle's own keys/ (dana, eli, pat): not among them
    assert line.status == "fail" and "not in the bundle's own keys/" in line.detail
    sign_bundle(copy, keys / "eli.key")  # a key the verifier holds
    assert _line(copy, public_keys=[keys / "eli.pub"]).status == "pass"
    with pytest.raises(SignatureError, match="no public key to check it with"):
        mlhandoff.open_bundle(copy, require_signature=True)
    mallory = TrustAnchors.load([keys / "mallory.pub"])
    with pytest.raises(SignatureError, match="not in the given public keys"):
        mlhandoff.open_bundle(copy, anchors=mallory, require_signature=True)
    eli = TrustAnchors.load([keys / "eli.pub"])
    assert mlhandoff.open_bundle(copy, anchors=eli, require_signature=True).anchors == eli
    shutil.rmtree(copy / "signatures")
    with pytest.raises(SignatureError, match="the bundle is not signed"):
        mlhandoff.open_bundle(copy, anchors=eli, require_signature=True)


def test_a_key_the_bundle_carries_is_only_a_warning(
    example_bundle: Path, example_dir: Path, tmp_path: Path
) -> None:
    """Signed with a key of the bundle's own keys/: valid, but proves nothing by itself."""
    line = _line(example_bundle)  # signed by eli, whose .pub the bundle carries
    assert line.status == "warn" and "signed by keys/eli.pub" in line.detail
    assert "proves nothing by itself" in line.detail
    ring = example_dir / "work" / "keys"
    assert _line(example_bundle, public_keys=[ring / "eli.pub"]).status == "pass"


def test_unsigned_is_skipped_unless_the_spec_requires_it(
    example_dir: Path, keys: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load((example_dir / "handoff.yaml").read_text())
    data["security"].update(require_signature=False, keyring=None)
    spec = example_dir / f"{tmp_path.name}-unsigned.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    bundle = mlhandoff.pack(spec=spec, out=tmp_path).path
    line = _line(bundle)
    assert line.status == "skipped" and "not signed" in line.detail
    sign_bundle(bundle, keys / "eli.key")
    line = _line(bundle)  # no key anywhere to check it with
    assert line.status == "warn" and "no public key to check it with" in line.detail


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    result = _run("keygen", tmp_path / "k" / "dana.key")
    assert result.exit_code == 0, result.output
    private = tmp_path / "k" / "dana.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in (tmp_path / "k" / "dana.pub").read_bytes()
    again = _run("keygen", private)
    assert again.exit_code == 2 and "already exists" in again.output
    assert _run("keygen", private, "--force").exit_code == 0


def test_bad_key_files_are_bad_input(copy: Path, keys: Path, tmp_path: Path) -> None:
    result = _run("verify", copy, "--public-key", keys / "eli.key")
    assert result.exit_code == 2 and "holds a private key" in result.output
    (tmp_path / "junk.pub").write_text("not a key")
    result = _run("verify", copy, "--public-key", tmp_path / "junk.pub")
    assert result.exit_code == 2 and "not a PEM public key" in result.output
    result = _run("sign", copy, "--key", keys / "eli.pub")
    assert result.exit_code == 2 and "not an unencrypted PEM private key" in result.output
    with pytest.raises(InputError, match="keyring not found"):
        mlhandoff.verify(copy, keyring=tmp_path / "nowhere")
