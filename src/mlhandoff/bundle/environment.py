"""Capturing the exact environment a model needs: pinned packages, Python, platform.

The lock lists the flavor's packages and everything they require (transitively), with the
versions installed where ``pack`` ran, so ``pip install -r env/requirements.txt`` rebuilds it.

With artifact hashes (``pack --lock-hashes``) each pin also lists the sha256 of the files pip
would install here, in pip's ``--require-hashes`` format, so an install gets exactly the audited
artifacts. They come from ``pip download --no-deps`` of each pin into a temporary folder (from
the package index, or offline from a folder of wheels: ``--wheels DIR``), bounded in time; when
any pin has no artifact, no hashes are written (pip needs all or none) and the header says why.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

_NORMALISE = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return _NORMALISE.sub("-", name).lower()


def _installed() -> dict[str, metadata.Distribution]:
    dists: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            dists.setdefault(canonical_name(name), dist)
    return dists


def package_closure(roots: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Installed versions of ``roots`` and their runtime requirements; also the roots not found."""
    installed = _installed()
    pinned: dict[str, str] = {}
    missing: list[str] = []
    queue = [canonical_name(r) for r in roots]
    roots_set = set(queue)
    while queue:
        name = queue.pop()
        if name in pinned:
            continue
        dist = installed.get(name)
        if dist is None:
            if name in roots_set:
                missing.append(name)
            continue
        pinned[name] = dist.version
        for line in dist.requires or []:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                queue.append(canonical_name(req.name))
    return {_display_name(installed[n]): v for n, v in sorted(pinned.items())}, sorted(missing)


def _display_name(dist: metadata.Distribution) -> str:
    return str(dist.metadata["Name"])


def capture(packages: Iterable[str], seed: int | None = None) -> dict[str, Any]:
    """The environment record written to ``env/environment.json``."""
    pinned, missing = package_closure(packages)
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "seed": seed,
        "packages": pinned,
        "not_installed": missing,
    }


#: Installed from its own source by repro and the README, so it never carries a hash.
SELF = "mlhandoff"


@dataclass
class HashLock:
    """Artifact hashes per pinned package, and why any could not be had."""

    hashes: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = ""

    def complete(self, packages: Mapping[str, str]) -> bool:
        return all(self.hashes.get(n) for n in packages if canonical_name(n) != SELF)


def requirements_txt(env: dict[str, Any], lock: HashLock | None = None) -> str:
    header = (
        f"# Exact versions captured by mlhandoff pack (Python {env['python']}, {env['platform']}).\n"
        "# Recreate with: python -m venv .venv && .venv/bin/pip install -r env/requirements.txt\n"
    )
    packages: dict[str, str] = env["packages"]
    if lock is None:
        return header + "".join(f"{name}=={version}\n" for name, version in packages.items())
    if not lock.complete(packages):
        reasons = "; ".join(lock.notes[:5]) or "no artifact found"
        header += f"# No artifact hashes: not obtainable for every pin ({reasons}).\n"
        return header + "".join(f"{name}=={version}\n" for name, version in packages.items())
    header += (
        f"# Artifact hashes (sha256) of the files pip installs here, from {lock.source}:\n"
        "# pip install --require-hashes -r env/requirements.txt installs exactly these files.\n"
    )
    own = [f"{n}=={v}" for n, v in packages.items() if canonical_name(n) == SELF]
    pinned = [(f"{n}=={v}", lock.hashes[n]) for n, v in packages.items() if f"{n}=={v}" not in own]
    return (
        header
        + format_requirements(pinned)
        + "".join(f"# {pin}: installed from its own source (no artifact hash)\n" for pin in own)
    )


def lock_hashes(
    packages: Mapping[str, str],
    *,
    wheels: Path | None = None,
    timeout_s: float = 300.0,
    python: str = sys.executable,
) -> HashLock:
    """sha256 of the artifact ``pip download --no-deps`` picks for each pin (``wheels``: from
    that folder only, offline). One pip call for all pins; pin by pin only when that fails, to
    say which. Never raises for a pin it cannot get: it notes why."""
    lock = HashLock(source=f"the wheels in {wheels}" if wheels else "the package index")
    pins = {n: v for n, v in packages.items() if canonical_name(n) != SELF}
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryDirectory(prefix="mlhandoff-hashes-") as tmp:
        dest = Path(tmp)
        done = _download(python, list(pins.items()), dest, wheels, deadline - time.monotonic())
        for name, version in pins.items():
            if done is None or done.returncode:  # find out which pin fails, one by one
                left = deadline - time.monotonic()
                if left <= 0:
                    lock.notes.append(f"stopped after {timeout_s:g}s before {name}")
                    break
                one = _download(python, [(name, version)], dest, wheels, left)
                if one is None:
                    lock.notes.append(f"timed out after {timeout_s:g}s at {name}")
                    break
                if one.returncode:
                    tail = (one.stderr.strip().splitlines() or ["failed"])[-1]
                    lock.notes.append(f"{name}=={version}: {tail}")
                    continue
            found = _artifacts(dest, name, version)
            if not found:
                lock.notes.append(f"{name}=={version}: no artifact downloaded")
                continue
            lock.hashes[name] = sorted(_sha256(p) for p in found)
    return lock


def _download(
    python: str, pins: list[tuple[str, str]], dest: Path, wheels: Path | None, timeout: float
) -> subprocess.CompletedProcess[str] | None:
    """``pip download --no-deps`` of ``pins`` into ``dest``; None when out of time."""
    if timeout <= 0:
        return None
    args = [python, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    args += ["--no-input", "-q", "--dest", str(dest), *(f"{n}=={v}" for n, v in pins)]
    if wheels is not None:
        args += ["--no-index", "--find-links", str(wheels)]
    try:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None


def _artifacts(dest: Path, name: str, version: str) -> list[Path]:
    """The files in ``dest`` that are ``name`` at ``version`` (by their file names)."""
    if not dest.is_dir():
        return []
    out = []
    for path in dest.iterdir():
        try:
            if path.suffix == ".whl":
                found, ver, _, _ = parse_wheel_filename(path.name)
            else:
                found, ver = parse_sdist_filename(path.name)
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if found == canonicalize_name(name) and str(ver) == version:
            out.append(path)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parse_requirements(text: str) -> list[tuple[str, list[str]]]:
    """``(pin, [sha256, ...])`` per requirement of a lock (hash continuation lines joined)."""
    entries: list[tuple[str, list[str]]] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pin, *rest = line.split()
        entries.append(
            (pin, [h.removeprefix("--hash=sha256:") for h in rest if h.startswith("--hash=")])
        )
    return entries


def format_requirements(entries: Sequence[tuple[str, list[str]]]) -> str:
    return "".join(
        pin + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes) + "\n"
        for pin, hashes in entries
    )


def version_mismatches(env: dict[str, Any]) -> list[str]:
    """Packages whose installed version differs from the bundle's lock (for a structured warning)."""
    installed = _installed()
    out = []
    for name, locked in env.get("packages", {}).items():
        dist = installed.get(canonical_name(name))
        here = dist.version if dist else "not installed"
        if here != locked:
            out.append(f"{name} {locked} in the bundle, {here} here")
    return out
