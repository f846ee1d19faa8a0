"""Taking the user's files into a bundle: regular files only, from the spec's directory, bounded.

A path in the spec is an instruction to copy whatever it names into a shared artifact. Links,
devices and paths outside the spec's directory would let a spec (or a link left in a code
folder) pull in ``/dev/zero``, a parent directory or a password file, so they are refused
unless the caller says ``allow_outside``; sizes are added up before anything is copied.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlhandoff.errors import InputError

#: Folders and files never copied from a code or model directory.
IGNORED = (".git", "__pycache__", ".venv", "*.pyc", ".ipynb_checkpoints")
#: Upper bounds on what one spec field may copy into a bundle.
MAX_MODEL_BYTES = 20 * 1024**3
MAX_CODE_BYTES = 100 * 1024**2
_COPY_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class InputFiles:
    """The regular files a spec field names: ``(absolute source, path relative to the root)``."""

    root: Path
    files: tuple[tuple[Path, str], ...]

    @property
    def size(self) -> int:
        return sum(source.stat().st_size for source, _ in self.files)


def resolve_input(base: Path, rel: str, field: str, *, allow_outside: bool = False) -> Path:
    """``base / rel`` resolved; it must exist and, unless allowed, lie inside ``base``."""
    path = base / rel
    if not path.exists():
        raise InputError(f"{field}: {path} not found (paths are relative to the spec's directory)")
    resolved = path.resolve()
    if not allow_outside and not resolved.is_relative_to(base.resolve()):
        raise InputError(
            f"{field}: {rel} resolves to {resolved}, outside the spec's directory {base.resolve()}; "
            "move it next to the spec, or pass --allow-outside (allow_outside=True) if you "
            "really mean to pack it"
        )
    return resolved


def collect(
    base: Path, rel: str, field: str, *, max_bytes: int, allow_outside: bool = False
) -> InputFiles:
    """Every regular file a spec field names (a file or a directory tree), checked and sized.

    Symbolic links inside a directory are followed only to regular files inside ``base``;
    directory links, devices, FIFOs and sockets are refused by name.
    """
    root = resolve_input(base, rel, field, allow_outside=allow_outside)
    inside = root if allow_outside else base.resolve()
    if root.is_dir():
        files = tuple(_walk(root, field, inside))
    else:
        _check_regular(root, rel, field)
        files = ((root, root.name),)
    found = InputFiles(root, files)
    if found.size > max_bytes:
        raise InputError(
            f"{field}: {rel} holds {found.size / 1024**2:,.0f} MiB, more than the "
            f"{max_bytes / 1024**2:,.0f} MiB a bundle takes from it; leave data and outputs "
            "out of code folders (they are listed under training.data by digest)"
        )
    return found


def _walk(root: Path, field: str, inside: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
        for name in list(dirnames):
            if (here / name).is_symlink():
                raise InputError(
                    f"{field}: {here / name} is a link to a directory; copy what it points at "
                    "into the folder instead (links could pull in anything)"
                )
        for name in sorted(filenames):
            if _ignored(name):
                continue
            path = here / name
            rel = path.relative_to(root.parent).as_posix()
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(inside):
                    raise InputError(
                        f"{field}: {path} links to {target}, outside {inside}; refusing to pack it"
                    )
                path = target
            _check_regular(path, rel, field)
            found.append((path, rel))
    return found


def _ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED)


def _check_regular(path: Path, rel: str, field: str) -> None:
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise InputError(f"{field}: {rel} is {kind}; only regular files go into a bundle")


def copy_into(
    found: InputFiles, dest_dir: Path, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Copy the collected files under ``dest_dir`` (keeping their relative paths)."""
    for source, rel in found.files:
        target = dest_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as src, target.open("xb") as dst:
            while chunk := src.read(_COPY_CHUNK):
                dst.write(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
        shutil.copymode(source, target)
