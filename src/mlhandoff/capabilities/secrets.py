"""Keeping secrets out of bundles: copied code and files are scanned before they are hashed.

A bundle is shared, archived and served; a credential inside it is leaked. Files that are
secrets by name are refused, and text files are searched for well-known credential shapes.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from mlhandoff.errors import InputError

_SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
    "credentials",
    "*.keystore",
)
_PATTERNS = {
    "a private key": re.compile(
        rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
    ),
    "an AWS access key id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a GitHub token": re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "a Slack token": re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "a Google API key": re.compile(rb"\bAIza[0-9A-Za-z_-]{35}\b"),
    "a password assignment": re.compile(
        rb"(?i)\b(?:password|passwd|secret|api_?key|token)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"
    ),
}
_MAX_SCAN = 2 * 1024 * 1024


def scan_for_secrets(root: Path, under: str) -> None:
    """Raise InputError naming the first file (and line) under ``root/under`` holding a secret."""
    base = root / under
    if not base.exists():
        return
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in _SECRET_NAMES):
            raise InputError(
                f"{rel}: a file named like a secret would go into the bundle; remove it from the training code directory"
            )
        if path.stat().st_size > _MAX_SCAN:
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary: model weights, not text
        for what, pattern in _PATTERNS.items():
            match = pattern.search(data)
            if match:
                line = data.count(b"\n", 0, match.start()) + 1
                raise InputError(
                    f"{rel}:{line}: looks like {what}; secrets never go into a bundle — read it from "
                    "the environment at run time instead"
                )
