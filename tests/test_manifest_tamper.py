"""Which file changed: a file the manifest lists, or MANIFEST.json itself."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import mlhandoff
from mlhandoff.bundle.manifest import (
    MANIFEST_NAME,
    build_manifest,
    check_integrity,
    read_manifest,
    write_manifest,
)

_META = {"name": "x", "version": "1", "created_at": "now", "created_by": "test"}


def _bundle(root: Path, files: dict[str, bytes]) -> dict:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    manifest = build_manifest(root, _META)
    write_manifest(root, manifest)
    return manifest


def _flip_hex(text: str, at: int) -> str:
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :]


@settings(max_examples=60, deadline=None)
@given(
    contents=st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=4),
    which=st.integers(min_value=0),
    at=st.integers(min_value=0, max_value=63),
)
def test_any_edited_hash_in_the_manifest_is_the_manifests_fault(
    contents: list[bytes], which: int, at: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = {f"d/f{i}.bin": data for i, data in enumerate(contents)}
        manifest = _bundle(root, files)
        rel = sorted(files)[which % len(files)]
        manifest["files"][rel]["sha256"] = _flip_hex(manifest["files"][rel]["sha256"], at)
        write_manifest(root, manifest)
        report = check_integrity(root, read_manifest(root))
        assert not report.ok and report.manifest_edited
        assert report.describe() == (
            f"{MANIFEST_NAME} was changed after pack: its entries for {rel} disagree with "
            "the files, while the files on disk still match its bundle_digest"
        )


def test_a_changed_file_is_still_the_files_fault(tmp_path: Path) -> None:
    _bundle(tmp_path, {"a.txt": b"a", "b.txt": b"b"})
    (tmp_path / "a.txt").write_bytes(b"A")
    report = check_integrity(tmp_path, read_manifest(tmp_path))
    assert not report.manifest_edited and report.describe() == "modified: a.txt"


def test_a_changed_size_or_path_in_the_manifest(tmp_path: Path) -> None:
    manifest = _bundle(tmp_path, {"a.txt": b"a", "b.txt": b"b"})
    manifest["files"]["a.txt"]["size"] = 7
    write_manifest(tmp_path, manifest)
    report = check_integrity(tmp_path, read_manifest(tmp_path))
    assert report.manifest_edited and "its entries for a.txt disagree" in report.describe()
    manifest["files"]["a.txt"]["size"] = 1
    manifest["files"]["c.txt"] = manifest["files"].pop("b.txt")
    write_manifest(tmp_path, manifest)
    report = check_integrity(tmp_path, read_manifest(tmp_path))
    assert report.manifest_edited and "its entries for c.txt, b.txt disagree" in report.describe()


def test_both_changed_is_not_blamed_on_the_manifest_alone(tmp_path: Path) -> None:
    manifest = _bundle(tmp_path, {"a.txt": b"a", "b.txt": b"b"})
    manifest["files"]["a.txt"]["sha256"] = "0" * 64
    write_manifest(tmp_path, manifest)
    (tmp_path / "b.txt").write_bytes(b"B")
    report = check_integrity(tmp_path, read_manifest(tmp_path))
    assert not report.manifest_edited
    assert report.describe() == (
        "modified: a.txt, b.txt; bundle_digest does not match the listed files"
    )


def test_one_byte_changed_in_the_example_manifest(example_bundle: Path, tmp_path: Path) -> None:
    """The report that prompted this: one byte in MANIFEST.json read as 'modified: docs/...'."""
    copy = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, copy)
    text = (copy / MANIFEST_NAME).read_text()
    entry = json.loads(text)["files"]["docs/README.md"]["sha256"]
    (copy / MANIFEST_NAME).write_text(text.replace(entry, _flip_hex(entry, 10)))
    integrity = mlhandoff.verify(copy).results[0]
    assert integrity.status == "fail"
    assert integrity.detail.startswith("MANIFEST.json was changed after pack: its entries for ")
    assert "docs/README.md" in integrity.detail and "modified:" not in integrity.detail
    digest = json.loads(text)["bundle_digest"]
    (copy / MANIFEST_NAME).write_text(text.replace(digest, "sha256:" + "0" * 64))
    integrity = mlhandoff.verify(copy).results[0]
    assert integrity.detail == (
        "MANIFEST.json was changed after pack: its bundle_digest does not match the listed "
        "files, which all match the files on disk"
    )
