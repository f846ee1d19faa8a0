"""Signed sign-offs: bound to the bundle digest, checked against a keyring, stale after a change."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import mlhandoff
from mlhandoff.bundle.manifest import build_manifest, read_manifest, write_manifest
from mlhandoff.bundle.signing import generate_key
from mlhandoff.bundle.signoffs import read_signoffs, sign_off
from mlhandoff.cli import app
from mlhandoff.errors import InputError
from signers import SIGNERS


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def copy(example_bundle: Path, tmp_path: Path) -> Path:
    """The example, unsigned (its spec declares the three sign-offs in YAML)."""
    target = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, target, ignore=shutil.ignore_patterns("signatures"))
    return target


@pytest.fixture()
def ring(example_dir: Path) -> Path:
    return example_dir / "work" / "keys"


def _signoffs(bundle: Path, **anchors) -> mlhandoff.CheckResult:
    return {r.id: r for r in mlhandoff.verify(bundle, **anchors).results}["signoffs"]


def _sign_all(bundle: Path, ring: Path) -> None:
    for key, role, who in SIGNERS:
        sign_off(bundle, role=role, name=who, key=ring / f"{key}.key", comment="checked")


def test_three_signed_sign_offs_pass(copy: Path, ring: Path) -> None:
    digest = read_manifest(copy)["bundle_digest"]
    for key, role, who in SIGNERS:
        result = _run("signoff", copy, "--role", role, "--name", who, "--key", ring / f"{key}.key")
        assert result.exit_code == 0, result.output
    assert read_manifest(copy)["bundle_digest"] == digest  # signing off changes no bundle file
    line = _signoffs(copy, keyring=ring)
    assert line.status == "pass", line.detail
    assert "signed: DS Dana Scientist" in line.detail and "(dana.pub)" in line.detail
    assert "declared, not signed" not in line.detail
    # without --keyring, the keys the spec's security.keyring put into the bundle, said so
    line = _signoffs(copy)
    assert line.status == "pass" and "(keys/dana.pub)" in line.detail
    assert "pass --keyring to use yours" in line.detail


def test_what_a_sign_off_states(copy: Path, ring: Path) -> None:
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    path = sign_off(
        copy, role="ds", name="Dana Scientist", key=ring / "dana.key", comment="ok", now=at
    )
    assert path.parent == copy / "signatures" / "signoffs"
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["dsseEnvelope"]["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == read_manifest(copy)["bundle_digest"][7:]
    assert statement["predicate"] == {
        "role": "ds",
        "name": "Dana Scientist",
        "signed_at": "2026-11-20T09:30:00Z",
        "comment": "ok",
    }
    again = sign_off(copy, role="ds", name="Dana Scientist", key=ring / "dana.key", now=at)
    assert again != path  # appended, never overwritten
    records, problems = read_signoffs(copy, [], "nowhere")
    assert not records and len(problems) == 2


def test_typed_yaml_sign_offs_are_declared_not_signed(copy: Path, ring: Path) -> None:
    line = _signoffs(copy, keyring=ring)
    assert line.status == "missing"
    assert "no signed sign-off from PM, DS, Eng" in line.detail
    assert "declared, not signed: DS Dana Scientist 2026-11-20" in line.detail
    sign_off(copy, role="ds", name="Dana Scientist", key=ring / "dana.key")
    line = _signoffs(copy, keyring=ring)
    assert line.status == "missing" and "no signed sign-off from PM, Eng" in line.detail
    assert "declared, not signed: Eng Eli Engineer" in line.detail
    assert "declared, not signed: DS" not in line.detail


def test_a_sign_off_on_an_older_digest_is_stale(copy: Path, ring: Path) -> None:
    _sign_all(copy, ring)
    old = read_manifest(copy)["bundle_digest"]
    readme = copy / "docs" / "README.md"
    readme.write_text(readme.read_text() + "\nedited after sign-off\n")
    manifest = read_manifest(copy)
    meta = {k: manifest[k] for k in ("name", "version", "created_at", "created_by")}
    write_manifest(copy, build_manifest(copy, meta))
    line = _signoffs(copy, keyring=ring)
    assert line.status == "missing" and "no signed sign-off from PM, DS, Eng" in line.detail
    assert "stale (signed an earlier bundle digest): " in line.detail
    assert f"on {old[:19]}…" in line.detail


def test_a_sign_off_by_a_key_not_in_the_keyring(copy: Path, ring: Path, tmp_path: Path) -> None:
    generate_key(tmp_path / "mallory.key")
    _sign_all(copy, ring)
    sign_off(copy, role="pm", name="Pat Manager", key=tmp_path / "mallory.key")
    line = _signoffs(copy, keyring=ring)
    assert line.status == "fail"  # something under signatures/ does not verify: say it loudly
    assert "signed by a key that is not in the --keyring given" in line.detail
    assert line.detail.startswith("signed: ")  # the three good ones still listed
    # a keyring without Pat's key: Pat's sign-off does not count
    own = tmp_path / "ring"
    own.mkdir()
    for name in ("dana", "eli"):
        shutil.copy(ring / f"{name}.pub", own)
    line = _signoffs(copy, keyring=own)
    assert line.status == "fail" and "no signed sign-off from PM" in line.detail


def test_a_truncated_or_forged_sign_off_is_named(copy: Path, ring: Path) -> None:
    _sign_all(copy, ring)
    files = sorted((copy / "signatures" / "signoffs").iterdir())
    data = files[0].read_bytes()
    files[0].write_bytes(data[:100])
    envelope = json.loads(files[1].read_text())
    statement = json.loads(base64.b64decode(envelope["dsseEnvelope"]["payload"]))
    statement["predicate"]["role"] = "pm"  # an engineer's sign-off turned into the PM's
    envelope["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    files[1].write_text(json.dumps(envelope))
    line = _signoffs(copy, keyring=ring)
    assert line.status == "fail"
    assert f"signatures/signoffs/{files[0].name}: not a readable signature" in line.detail
    assert f"signatures/signoffs/{files[1].name}: the signature does not verify" in line.detail


def test_an_unknown_role_is_refused(copy: Path, ring: Path) -> None:
    result = _run("signoff", copy, "--role", "cto", "--name", "X", "--key", ring / "pat.key")
    assert result.exit_code == 2
    assert "--role 'cto' is not a sign-off role; use one of: pm, ds, eng" in result.output
    assert not (copy / "signatures").exists()
    with pytest.raises(InputError, match="--name is empty"):
        sign_off(copy, role="pm", name=" ", key=ring / "pat.key")


def test_a_tampered_bundle_is_not_signed_off(copy: Path, ring: Path) -> None:
    (copy / "docs" / "README.md").write_text("changed")
    result = _run("signoff", copy, "--role", "pm", "--name", "Pat", "--key", ring / "pat.key")
    assert result.exit_code == 2 and "modified: docs/README.md" in result.output


def test_the_spec_chooses_the_roles_it_requires(
    example_dir: Path, ring: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load((example_dir / "handoff.yaml").read_text())
    data["security"]["signoff_roles"] = ["ds"]
    spec = example_dir / f"{tmp_path.name}-ds-only.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    bundle = mlhandoff.pack(spec=spec, out=tmp_path).path
    assert _signoffs(bundle, keyring=ring).status == "missing"
    sign_off(bundle, role="ds", name="Dana Scientist", key=ring / "dana.key")
    line = _signoffs(bundle, keyring=ring)
    assert line.status == "pass" and "declared, not signed: Eng Eli Engineer" in line.detail
