"""Capturing the exact environment a model needs: pinned packages, Python, platform.

The lock lists the flavor's packages and everything they require (transitively), with the
versions installed where ``pack`` ran, so ``pip install -r env/requirements.txt`` rebuilds it.
"""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

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


def requirements_txt(env: dict[str, Any]) -> str:
    header = (
        f"# Exact versions captured by mlhandoff pack (Python {env['python']}, {env['platform']}).\n"
        "# Recreate with: python -m venv .venv && .venv/bin/pip install -r env/requirements.txt\n"
    )
    return header + "".join(f"{name}=={version}\n" for name, version in env["packages"].items())


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
