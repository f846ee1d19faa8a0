"""Attack pass, pack side: pack copies only regular files from the spec's directory, bounded,
and a crash or a full disk never leaves a half bundle or loses the one that was there."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mlhandoff
from mlhandoff.capabilities.files import MAX_CODE_BYTES
from mlhandoff.errors import BundleExistsError, InputError


def _spec(example_dir: Path, tmp_path: Path, edit) -> Path:
    """An edited copy of the example spec in its own folder, with the example's files."""
    home = tmp_path / "project"
    home.mkdir()
    (home / "work").mkdir()
    for name in ("model.skops", "train.parquet", "test.parquet", "sample.parquet"):
        os.link(example_dir / "work" / name, home / "work" / name)
    shutil.copytree(example_dir / "work" / "keys", home / "work" / "keys")  # security.keyring
    shutil.copy(example_dir / "train.py", home / "train.py")
    data = yaml.safe_load((example_dir / "handoff.yaml").read_text())
    edit(data, home)
    (home / "handoff.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return home / "handoff.yaml"


def _no_bundle(out: Path) -> None:
    assert not out.exists() or not [p for p in out.iterdir() if p.name != ".keep"], list(
        out.iterdir()
    )


def test_a_code_folder_linking_to_its_parent_is_refused(example_dir: Path, tmp_path: Path) -> None:
    def edit(d: dict, home: Path) -> None:
        (home / "src").mkdir()
        shutil.copy(home / "train.py", home / "src" / "train.py")
        os.symlink("..", home / "src" / "up")
        d["training"]["code_path"] = "src"

    with pytest.raises(InputError, match="link to a directory"):
        mlhandoff.pack(spec=_spec(example_dir, tmp_path, edit), out=tmp_path / "dist")
    _no_bundle(tmp_path / "dist")


def test_a_device_as_the_model_is_refused(example_dir: Path, tmp_path: Path) -> None:
    spec = _spec(example_dir, tmp_path, lambda d, h: d["model"].update(path="/dev/zero"))
    with pytest.raises(InputError, match="outside the spec's directory"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    with pytest.raises(InputError, match="is a device"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist", allow_outside=True)
    _no_bundle(tmp_path / "dist")


def test_a_fifo_as_training_data_is_refused(example_dir: Path, tmp_path: Path) -> None:
    def edit(d: dict, home: Path) -> None:
        os.mkfifo(home / "work" / "stream.parquet")
        d["training"]["data"] = [{"path": "work/stream.parquet", "role": "train"}]

    with pytest.raises(InputError, match=r"training.data\[0\].path: work/stream.parquet is a FIFO"):
        mlhandoff.pack(spec=_spec(example_dir, tmp_path, edit), out=tmp_path / "dist")


def test_code_outside_the_spec_directory_needs_the_flag(example_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("db password is in the vault\n")
    spec = _spec(
        example_dir, tmp_path, lambda d, h: d["training"].update(code_path="../other/notes.txt")
    )
    with pytest.raises(InputError, match=r"outside the spec's directory.*--allow-outside"):
        mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    result = mlhandoff.pack(spec=spec, out=tmp_path / "dist", allow_outside=True)
    assert (result.path / "code" / "notes.txt").read_text().startswith("db password")


def test_an_oversized_code_folder_is_refused_before_copying(
    example_dir: Path, tmp_path: Path
) -> None:
    def edit(d: dict, home: Path) -> None:
        (home / "src").mkdir()
        with (home / "src" / "dump.bin").open("wb") as f:
            f.truncate(MAX_CODE_BYTES + 1)  # sparse: costs no disk
        d["training"]["code_path"] = "src"

    with pytest.raises(InputError, match="more than the 100 MiB"):
        mlhandoff.pack(spec=_spec(example_dir, tmp_path, edit), out=tmp_path / "dist")
    _no_bundle(tmp_path / "dist")


def test_a_link_inside_the_code_folder_to_a_file_beside_it_is_copied(
    example_dir: Path, tmp_path: Path
) -> None:
    def edit(d: dict, home: Path) -> None:
        (home / "src").mkdir()
        os.symlink(home / "train.py", home / "src" / "train.py")
        d["training"]["code_path"] = "src"

    result = mlhandoff.pack(spec=_spec(example_dir, tmp_path, edit), out=tmp_path / "dist")
    copied = result.path / "code" / "src" / "train.py"
    assert copied.is_file() and not copied.is_symlink()
    assert mlhandoff.verify(result.path).results[0].status == "pass"


def test_stale_partials_are_reaped_and_live_ones_kept(example_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    out.mkdir()
    name = "risky-transactions-1.0.0"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = out / f".{name}.{dead}.abc.partial"
    live = out / f".{name}.{os.getpid()}.xyz.partial"
    for path in (stale, live):
        (path / "model").mkdir(parents=True)
    mlhandoff.pack(spec=example_dir / "handoff.yaml", out=out)
    assert not stale.exists() and live.exists()


def test_a_replace_interrupted_between_renames_gets_the_old_bundle_back(
    example_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dist"
    first = mlhandoff.pack(spec=example_dir / "handoff.yaml", out=out)
    first.path.rename(out / f".{first.path.name}.replaced")  # as a crash mid-replace leaves it
    with pytest.raises(BundleExistsError):
        mlhandoff.pack(spec=example_dir / "handoff.yaml", out=out)
    assert mlhandoff.open_bundle(first.path).digest == first.bundle_digest


def test_force_swaps_the_new_bundle_in_and_leaves_nothing_else(
    example_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dist"
    first = mlhandoff.pack(spec=example_dir / "handoff.yaml", out=out)
    second = mlhandoff.pack(spec=example_dir / "handoff.yaml", out=out, force=True)
    assert sorted(p.name for p in out.iterdir()) == [first.path.name]
    assert mlhandoff.open_bundle(second.path).digest == second.bundle_digest


def test_a_full_disk_is_an_input_error_not_a_bug(example_dir: Path, tmp_path: Path) -> None:
    """A write limit (as a full disk gives) is exit 2 naming the file, with nothing left behind."""
    out = tmp_path / "dist"
    exe = Path(sys.executable).with_name("mlhandoff")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    done = subprocess.run(
        [str(exe), "pack", str(example_dir / "handoff.yaml"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )
    assert done.returncode == 2, done.stderr
    assert "storage_failed" in done.stderr and "File too large" in done.stderr
    assert "bug" not in done.stderr
    _no_bundle(out)
