"""Where a model came from: the training code's git commit and the data files' digests."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlhandoff.bundle.manifest import sha256_file
from mlhandoff.capabilities.files import collect


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


def data_digest(base: Path, rel: str, field: str, *, allow_outside: bool = False) -> str:
    """sha256 of a data file, or of a directory's regular files (sorted by relative path)."""
    found = collect(base, rel, field, max_bytes=sys.maxsize, allow_outside=allow_outside)
    if not found.root.is_dir():
        return sha256_file(found.root)
    digest = hashlib.sha256()
    for source, name in sorted(found.files, key=lambda f: f[1]):
        inner = name.split("/", 1)[1]  # relative to the directory itself
        digest.update(f"{sha256_file(source)}  {inner}\n".encode())
    return digest.hexdigest()
