"""Where a model came from: the training code's git commit and the data files' digests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlhandoff.bundle.manifest import sha256_file
from mlhandoff.errors import InputError


@dataclass(frozen=True)
class GitState:
    commit: str | None
    dirty: bool | None


def git_state(path: Path) -> GitState:
    """Commit and dirty flag of the repository holding ``path``; (None, None) outside git."""
    where = path if path.is_dir() else path.parent
    try:
        commit = _git(where, "rev-parse", "HEAD")
        status = _git(where, "status", "--porcelain", "--", str(path.resolve()))
    except (OSError, subprocess.SubprocessError):
        return GitState(commit=None, dirty=None)
    return GitState(commit=commit, dirty=bool(status))


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def data_digest(path: Path) -> str:
    """sha256 of a data file, or of a directory's files (sorted by relative path)."""
    if not path.exists():
        raise InputError(f"{path}: training/eval data file not found (training.data in the spec)")
    if path.is_file():
        return sha256_file(path)
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{sha256_file(file)}  {file.relative_to(path).as_posix()}\n".encode())
    return digest.hexdigest()
