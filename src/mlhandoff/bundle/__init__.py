"""Bundles: pack a spec and model into a hashed directory; open one safely."""

from mlhandoff.bundle.bundle import Bundle, EnvironmentMismatchWarning, open_bundle, read_bundle
from mlhandoff.bundle.manifest import FORMAT_VERSION
from mlhandoff.bundle.pack import PackResult, pack

__all__ = [
    "FORMAT_VERSION",
    "Bundle",
    "EnvironmentMismatchWarning",
    "PackResult",
    "open_bundle",
    "pack",
    "read_bundle",
]
