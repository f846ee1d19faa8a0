"""Attack pass, bundle side: every entry that is not a regular file fails integrity, and nothing
in a tampered bundle is opened, followed or imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mlhandoff
from mlhandoff.errors import IntegrityError


@pytest.fixture
def copy(example_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, target)
    return target


def test_a_directory_link_is_an_integrity_failure(copy: Path, tmp_path: Path) -> None:
    """os.walk lists directory links as directories: they were neither 'extra' nor 'link'."""
    evil = tmp_path / "evilpkg"
    evil.mkdir()
    (evil / "__init__.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w')\n")
    os.symlink(evil, copy / "code" / "model")
    report = mlhandoff.verify(copy)
    integrity = report.results[0]
    assert integrity.status == "fail" and "code/model" in integrity.detail
    assert {r.status for r in report.results[1:]} == {"skipped"}
    with pytest.raises(IntegrityError, match="code/model"):
        mlhandoff.open_bundle(copy)
    assert not (tmp_path / "imported").exists()


def test_a_fifo_listed_in_the_manifest_does_not_hang_verify(copy: Path) -> None:
    (copy / "docs" / "README.md").unlink()
    os.mkfifo(copy / "docs" / "README.md")
    exe = Path(sys.executable).with_name("mlhandoff")
    done = subprocess.run(
        [str(exe), "verify", str(copy), "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "not a regular file" in done.stdout and "docs/README.md" in done.stdout


@pytest.mark.parametrize("make", ["socket", "fifo"])
def test_special_files_anywhere_are_named(copy: Path, make: str) -> None:
    path = copy / "data" / "extra"
    if make == "fifo":
        os.mkfifo(path)
    else:
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    integrity = mlhandoff.verify(copy).results[0]
    assert integrity.status == "fail" and "data/extra" in integrity.detail


def test_a_linked_manifest_is_refused(copy: Path, tmp_path: Path) -> None:
    real = tmp_path / "MANIFEST.json"
    shutil.move(copy / "MANIFEST.json", real)
    os.symlink(real, copy / "MANIFEST.json")
    integrity = mlhandoff.verify(copy).results[0]
    assert integrity.status == "fail" and "not a regular file" in integrity.detail


def test_a_deeply_nested_manifest_is_a_clear_failure(copy: Path) -> None:
    (copy / "MANIFEST.json").write_text("[" * 200_000 + "]" * 200_000)
    integrity = mlhandoff.verify(copy).results[0]
    assert integrity.status == "fail" and "nested too deeply" in integrity.detail
