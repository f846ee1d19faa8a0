"""A hash-locked environment: artifact hashes in pip's --require-hashes format, obtained from a
folder of wheels offline (the index is the same code path with the network), checked by a real
pip, and used by repro."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import mlhandoff
from mlhandoff.bundle import environment
from mlhandoff.spec import parse_spec
from mlhandoff.verify import repro as repro_mod

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


@pytest.fixture(autouse=True, scope="module")
def _no_pip_config() -> Iterator[None]:
    """pip reads only what each test gives it, never this machine's indexes and wheel folders."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_CONFIG_FILE", os.devnull)
        yield


def _wheel(folder: Path, name: str, version: str, payload: str = "") -> Path:
    """A minimal, valid pure-Python wheel (metadata only, plus ``payload``)."""
    dist = environment.canonical_name(name).replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{payload}",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},,\n" for p in files) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for rel, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(rel, text)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


ENV = {"python": "3.11", "platform": "test", "packages": {"alpha-pkg": "1.0", "beta": "2.3.1"}}


def test_hashes_from_a_folder_of_wheels_install_with_require_hashes(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = {n: _wheel(wheels, n, v) for n, v in ENV["packages"].items()}
    lock = environment.lock_hashes(ENV["packages"], wheels=wheels)
    assert lock.notes == [] and lock.hashes == {n: [_sha(p)] for n, p in built.items()}
    text = environment.requirements_txt(ENV, lock)
    assert f"alpha-pkg==1.0 \\\n    --hash=sha256:{_sha(built['alpha-pkg'])}\n" in text
    assert "pip install --require-hashes -r env/requirements.txt" in text
    req = tmp_path / "requirements.txt"
    req.write_text(text)
    install = [*PIP, "install", "-q", "--no-index", "--find-links", str(wheels), "--require-hashes"]
    target = ["--target", str(tmp_path / "site"), "-r", str(req)]
    done = subprocess.run([*install, *target], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # an artifact that is not the audited one is refused by pip
    _wheel(wheels, "beta", "2.3.1", payload="Summary: swapped\n")
    done = subprocess.run([*install, *target], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "DO NOT MATCH THE HASHES" in done.stderr


def test_no_hashes_unless_every_pin_has_one(tmp_path: Path) -> None:
    _wheel(tmp_path, "alpha-pkg", "1.0")
    lock = environment.lock_hashes(ENV["packages"], wheels=tmp_path)
    assert list(lock.hashes) == ["alpha-pkg"] and lock.notes[0].startswith("beta==2.3.1: ")
    text = environment.requirements_txt(ENV, lock)
    assert (
        "--hash" not in text and "# No artifact hashes: not obtainable for every pin (beta" in text
    )
    assert "alpha-pkg==1.0\nbeta==2.3.1\n" in text


def test_hashing_is_bounded_in_time(tmp_path: Path) -> None:
    lock = environment.lock_hashes(ENV["packages"], wheels=tmp_path, timeout_s=0)
    assert lock.hashes == {} and lock.notes == ["stopped after 0s before alpha-pkg"]
    assert "--hash" not in environment.requirements_txt(ENV, lock)


def test_mlhandoff_itself_is_never_hashed(tmp_path: Path) -> None:
    env = {**ENV, "packages": {**ENV["packages"], "mlhandoff": "0.1.0"}}
    for n, v in ENV["packages"].items():
        _wheel(tmp_path, n, v)
    lock = environment.lock_hashes(env["packages"], wheels=tmp_path)
    text = environment.requirements_txt(env, lock)
    assert "# mlhandoff==0.1.0: installed from its own source (no artifact hash)" in text
    assert [pin for pin, _ in environment.parse_requirements(text)] == [
        "alpha-pkg==1.0",
        "beta==2.3.1",
    ]


_PIN = st.from_regex(r"[a-z][a-z0-9-]{0,10}==[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True)
_HASH = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)


@given(st.lists(st.tuples(_PIN, st.lists(_HASH, max_size=3).map(sorted)), max_size=5))
def test_format_and_parse_agree(entries: list[tuple[str, list[str]]]) -> None:
    assert environment.parse_requirements(environment.format_requirements(entries)) == entries


@pytest.fixture(scope="module")
def hashed_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny bundle packed with --wheels: a fake wheel for every pinned package."""
    root = tmp_path_factory.mktemp("hashed")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = (frame["a"] > 0).astype("int64")
    spec = parse_spec(
        """
name: hashed
version: "1"
model: {path: unused, flavor: sklearn, task: binary_classification, version_tag: v1}
data_contract:
  label: y
  fields: {a: {type: float}, b: {type: float}}
"""
    )
    packages, _ = environment.package_closure(
        ["scikit-learn", "skops", "numpy", "scipy", "joblib", "mlhandoff"]
    )
    wheels = root / "wheels"
    for name, version in packages.items():
        _wheel(wheels, name, version)
    model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    result = mlhandoff.pack(
        model, spec=spec, sample=frame.drop(columns="y"), out=root / "dist", wheels=wheels
    )
    return result.path, wheels


def test_pack_with_wheels_writes_a_hash_locked_lock(hashed_bundle: tuple[Path, Path]) -> None:
    bundle, wheels = hashed_bundle
    text = (bundle / "env" / "requirements.txt").read_text()
    entries = environment.parse_requirements(text)
    assert entries and all(len(hashes) == 1 for _, hashes in entries)
    by_file = {p.name: _sha(p) for p in wheels.iterdir()}
    numpy_pin = next(h for pin, h in entries if pin.startswith("numpy=="))
    assert numpy_pin[0] in by_file.values()
    assert mlhandoff.verify(bundle).results[0].status == "pass"


def test_repro_installs_with_require_hashes(
    hashed_bundle: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, wheels = hashed_bundle
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # this machine's pip config not read
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: the fake wheels alone
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    result = repro_mod.repro(bundle, workdir=tmp_path, write_record=False)
    install = result.steps[1]
    assert install.name.startswith("pip install --require-hashes -r env/requirements.txt (")
    assert install.name.endswith("pinned, hash-checked)") and install.ok, install.detail
